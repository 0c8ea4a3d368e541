"""`make token SCHOOL=ecnu-cto ROLE=coordinator [FACULTY_ID=...]`: print a bearer token.

Signs with the school's key in KEYS_DIR (var/keys by default), the same keys
the embedded stack verifies with; creates the dev keys if there are none yet.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from shared.auth import ROLES, KeyRing, ensure_dev_keys, issue_token
from shared.config import REPO_ROOT, load_alliance


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--school", required=True)
    parser.add_argument("--role", required=True, choices=ROLES)
    parser.add_argument("--faculty-id", default=None, help="required for role faculty")
    parser.add_argument("--subject", default=None)
    parser.add_argument("--ttl", type=int, default=3600, help="seconds of validity")
    args = parser.parse_args(argv)
    var_dir = Path(os.environ.get("VAR_DIR") or REPO_ROOT / "var")
    keys_dir = Path(os.environ.get("KEYS_DIR") or var_dir / "keys")
    config = Path(os.environ.get("ALLIANCE_CONFIG") or REPO_ROOT / "config" / "alliance.json")
    schools = [s.id for s in load_alliance(config, "127.0.0.1")]
    if args.school not in schools:
        parser.error(f"unknown school {args.school!r}; one of {', '.join(schools)}")
    ensure_dev_keys(keys_dir, schools)
    try:
        token = issue_token(KeyRing(keys_dir, args.school).private_key(), args.school, args.role,
                            subject=args.subject, faculty_id=args.faculty_id, ttl_seconds=args.ttl)
    except ValueError as exc:
        parser.error(str(exc))
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
