"""The project's own reference under `docs/`, generated from the code: `python -m gateway.reference`.

Each page is rendered from the one place its facts live (the error classes, the admin OpenAPI
document, the portal's route tables, the metrics a running gateway registers, the command line's
parser), and a test fails when a page in `docs/` differs from what this package renders, so the
reference cannot drift from the code. `docs/configuration.md` is `gateway.config.docs`'s, written
here too; `docs/headers.md` is written by hand and checked against the header rules by a test.
"""
