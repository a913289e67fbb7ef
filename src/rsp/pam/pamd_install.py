"""Write or remove the pam_unshare line in /etc/pam.d/SERVICE: checks, backup, atomic replace.

The editing itself is pamd_file's; this module does the file system part safely: the service must exist
(creating a service file would replace the `other` fallback for that service with a stack of one line), a
symbolic link is refused (replacing it would cut it), the previous content is kept as SERVICE.rsp-backup,
and the new content is written to a temporary file in the same directory, synced, given the old file's
mode and owner, and renamed over the old one, so a crash leaves the old file or the new one, never half.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from rsp.errors import PamError
from rsp.pam import pamd_file

DEFAULT_PAMD_DIR: Final = "/etc/pam.d"
BACKUP_SUFFIX: Final = ".rsp-backup"
# The file the pam.d line names: this package's pam_unshare.py, wherever rsp is installed.
MODULE_PATH: Final = str(Path(__file__).resolve().with_name(pamd_file.MODULE_FILE_NAME))
# Where Linux-PAM looks for a module named without a path: the multiarch directory first, then the
# directories Debian's libpam-python has used (/lib/security in bookworm).
_MULTIARCH: Final = sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"
PAM_MODULE_DIRS: Final = (f"/lib/{_MULTIARCH}/security", f"/usr/lib/{_MULTIARCH}/security", "/lib/security",
                          "/usr/lib/security")
# A PAM service name is a file name in pam.d.
_SERVICE_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")


@dataclass(frozen=True)
class EditResult:
    path: Path
    changed: bool
    new_text: str
    backup: Path | None


def service_path(pamd_dir: str, service: str) -> Path:
    if not _SERVICE_NAME.fullmatch(service) or service.endswith(BACKUP_SUFFIX):
        raise PamError(f"{service!r} is not a PAM service name")
    path = Path(pamd_dir) / service
    if path.is_symlink():
        raise PamError(f"{path} is a symbolic link; rsp does not edit through links (edit its target's service)")
    if not path.is_file():
        raise PamError(f"{path}: no such PAM service file (rsp edits an existing service, it does not create one)")
    return path


def find_pam_python(dirs: tuple[str, ...] = PAM_MODULE_DIRS) -> Path:
    """pam_python.so's path; PamError if libpam-python is not installed (a `required` line naming a missing
    module would refuse every session of the service)."""
    for directory in dirs:
        candidate = Path(directory) / pamd_file.PAM_PYTHON_MODULE
        if candidate.is_file():
            return candidate
    raise PamError(f"{pamd_file.PAM_PYTHON_MODULE} not found in {', '.join(dirs)}: "
                   "install Debian's libpam-python first (apt-get install libpam-python)")


def install(pamd_dir: str, service: str, line: str, *, dry_run: bool = False) -> EditResult:
    path = service_path(pamd_dir, service)
    text = path.read_text()
    new_text, changed = pamd_file.install_line(text, line, str(path))
    return _finish(path, text, new_text, changed, dry_run)


def uninstall(pamd_dir: str, service: str, *, dry_run: bool = False) -> EditResult:
    path = service_path(pamd_dir, service)
    text = path.read_text()
    new_text, removed = pamd_file.remove_line(text, str(path))
    return _finish(path, text, new_text, removed > 0, dry_run)


def _finish(path: Path, old_text: str, new_text: str, changed: bool, dry_run: bool) -> EditResult:
    if not changed or dry_run:
        return EditResult(path, changed, new_text, None)
    backup = path.with_name(path.name + BACKUP_SUFFIX)
    shutil.copy2(path, backup)
    atomic_write(path, new_text)
    return EditResult(path, True, new_text, backup)


def atomic_write(path: Path, text: str) -> None:
    """Replace `path` by `text` in one rename, keeping its mode and owner."""
    info = path.stat()
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".rsp-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as temp:
            temp.write(text)
            temp.flush()
            os.fchmod(temp.fileno(), stat.S_IMODE(info.st_mode))
            if os.geteuid() == 0:
                os.fchown(temp.fileno(), info.st_uid, info.st_gid)
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)  # the rename itself reaches the disk
    finally:
        os.close(directory)
