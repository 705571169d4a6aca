"""The proxy pipeline on the HTTP engine (`gateway.http`): transport check, route, access, forward."""
