"""`rsp pam install|uninstall --service NAME`: add or remove the pam_unshare session line of a PAM service."""

from __future__ import annotations

import argparse
import os

from rsp.errors import PamError
from rsp.pam import pamd_file, pamd_install
from rsp.pam.options import KNOWN_KEYS, parse_options

EPILOG = f"""\
Examples:
  rsp pam install --service sshd                      every non-root ssh login gets a private PID namespace
  rsp pam install --service sshd exempt_users=root,backup log_level=info
  rsp pam install --service sshd --dry-run            print the file it would write
  rsp pam uninstall --service sshd                    remove the line again

Module arguments (key=value): {', '.join(KNOWN_KEYS)}; see docs/pam.md.
Needs Debian's libpam-python. The previous file is kept as SERVICE{pamd_install.BACKUP_SUFFIX}.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rsp pam", description="Install or remove pam_unshare in a PAM service's session stack.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True)
    install = actions.add_parser("install", help="add (or update) the pam_unshare line")
    uninstall = actions.add_parser("uninstall", help="remove the pam_unshare line")
    for sub in (install, uninstall):
        sub.add_argument("--service", required=True, help="the PAM service (a file name in the pam.d directory)")
        sub.add_argument("--pamd-dir", default=pamd_install.DEFAULT_PAMD_DIR, help="default: %(default)s")
        sub.add_argument("--dry-run", action="store_true", help="print the new file, change nothing")
    install.add_argument("--module", default=pamd_install.MODULE_PATH,
                         help="pam_unshare.py to name in the line (default: this installation's, %(default)s)")
    install.add_argument("arguments", nargs="*", metavar="KEY=VALUE", help="module arguments")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.action == "install":
        parse_options(args.arguments)  # a typo here would fail every session of the service: refuse it now
        module = os.path.abspath(args.module)
        if not os.path.isfile(module):
            raise PamError(f"{module}: no such file")
        pam_python = pamd_install.find_pam_python()
        line = pamd_file.render_line(module, args.arguments)
        result = pamd_install.install(args.pamd_dir, args.service, line, dry_run=args.dry_run)
        done = f"added or updated: {line}" if result.changed else f"already there: {line}"
    else:
        pam_python = None
        result = pamd_install.uninstall(args.pamd_dir, args.service, dry_run=args.dry_run)
        done = "removed the pam_unshare line" if result.changed else "no pam_unshare line: nothing to do"
    if args.dry_run:
        print(result.new_text, end="")
        return 0
    print(f"{result.path}: {done}")
    if result.backup is not None:
        print(f"previous content kept in {result.backup}")
    if pam_python is not None:
        print(f"(loaded through {pam_python})")
    return 0
