"""The gateway's configuration: each section declared once (`sections.py` and
the section modules it assembles), read from YAML whole.

`parse_config` / `load_config` validate a file and report every problem at once with its
zero-based field path (`routes[1].upstream: must be an http(s) URL ...`); `check_file` does the
same without requiring the file's environment variables to be set (check-config).
"""

from gateway.config.accounts import KeysConfig, SelfApiConfig, StoreConfig, TokensConfig
from gateway.config.fields import Network
from gateway.config.limits import DEFAULT_PLANS, PlanConfig, RateLimitConfig
from gateway.config.listeners import AdminConfig, ServerConfig, TLSConfig
from gateway.config.observability import CallLogConfig, LoggingConfig, MetricsConfig, UsageAnomaliesConfig, UsageConfig
from gateway.config.parse import (
    Checked,
    check_file,
    load_config,
    parse_config,
    read_config,
)
from gateway.config.problems import ConfigError
from gateway.config.routes import ALL_METHODS, AUTH_KINDS, RouteConfig
from gateway.config.sections import Config
from gateway.config.webhooks import WebhooksConfig

__all__ = [
    "ALL_METHODS", "AUTH_KINDS", "DEFAULT_PLANS", "AdminConfig", "CallLogConfig", "Checked", "Config", "ConfigError",
    "KeysConfig", "LoggingConfig", "MetricsConfig", "Network", "PlanConfig", "RateLimitConfig", "RouteConfig",
    "SelfApiConfig", "ServerConfig", "StoreConfig", "TLSConfig", "TokensConfig", "UsageAnomaliesConfig", "UsageConfig",
    "WebhooksConfig",
    "check_file", "load_config", "parse_config", "read_config",
]
