"""``fleetdesk token create --role R [--tenant T] --db URL``: a new API token, printed once.

Only the token's SHA-256 is stored (table ``api_tokens``): a lost token cannot be shown again;
create another.
"""

from __future__ import annotations

import argparse
import sys

HELP = "create bearer tokens for the REST API and the board (printed once, stored hashed)"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="a new token; printed once, only its hash is kept")
    create.add_argument("--role", required=True, choices=("viewer", "operator", "admin"))
    create.add_argument("--tenant", help="only this tenant's devices and tickets")
    create.add_argument("--name", default="", help="who or what uses it (shown in the audit)")
    create.add_argument(
        "--db", required=True, help="database URL: sqlite:///FILE or postgresql+psycopg://..."
    )


def run(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from collector.store.api_store import create_token
    from collector.store.database import StoreError
    from collector.store.store import Store

    try:
        store = Store.open(args.db)
    except (StoreError, sa.exc.SQLAlchemyError) as exc:
        print(f"fleetdesk token: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    try:
        token, info = create_token(store.engine, args.role, args.tenant, args.name)
    finally:
        store.close()
    scope = f"tenant {info.tenant}" if info.tenant else "every tenant"
    print(token)
    print(
        f"fleetdesk token: {info.role} token {info.name!r} for {scope}; shown once only",
        file=sys.stderr,
    )
    return 0
