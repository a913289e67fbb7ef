"""`rsp pam install|uninstall` on a temporary pam.d directory: backup, mode, idempotence, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsp.cli import main
from rsp.errors import PamError
from rsp.pam.pamd_install import MODULE_PATH, find_pam_python

ORIGINAL = "auth required pam_permit.so\n@include common-session\n"


@pytest.fixture
def pamd(tmp_path: Path) -> Path:
    service = tmp_path / "svc"
    service.write_text(ORIGINAL)
    service.chmod(0o600)
    return tmp_path


def rsp_pam(*words: str) -> int:
    return main(["pam", *words])


def test_install_then_uninstall(pamd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rsp_pam("install", "--service", "svc", "--pamd-dir", str(pamd), "log_level=info") == 0
    expected_line = f"session required pam_python.so {MODULE_PATH} log_level=info"
    service = pamd / "svc"
    assert service.read_text() == ORIGINAL + expected_line + "\n"
    assert service.stat().st_mode & 0o777 == 0o600
    assert (pamd / "svc.rsp-backup").read_text() == ORIGINAL
    assert "added or updated" in capsys.readouterr().out

    assert rsp_pam("install", "--service", "svc", "--pamd-dir", str(pamd), "log_level=info") == 0
    assert "already there" in capsys.readouterr().out
    assert service.read_text() == ORIGINAL + expected_line + "\n"

    assert rsp_pam("uninstall", "--service", "svc", "--pamd-dir", str(pamd)) == 0
    assert service.read_text() == ORIGINAL
    assert rsp_pam("uninstall", "--service", "svc", "--pamd-dir", str(pamd)) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert sorted(path.name for path in pamd.iterdir()) == ["svc", "svc.rsp-backup"]  # no temporary left


def test_dry_run_prints_and_changes_nothing(pamd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rsp_pam("install", "--service", "svc", "--pamd-dir", str(pamd), "--dry-run") == 0
    assert capsys.readouterr().out == f"{ORIGINAL}session required pam_python.so {MODULE_PATH}\n"
    assert (pamd / "svc").read_text() == ORIGINAL
    assert not (pamd / "svc.rsp-backup").exists()


@pytest.mark.parametrize(("words", "message"), [
    (("install", "--service", "absent"), "no such PAM service file"),
    (("install", "--service", "../svc"), "is not a PAM service name"),
    (("install", "--service", "svc", "exempt_user=alice"), "unknown argument 'exempt_user'"),
    (("install", "--service", "svc", "--module", "/nonexistent/pam_unshare.py"), "no such file"),
    (("uninstall", "--service", "link"), "symbolic link"),
])
def test_refusals_leave_the_directory_untouched(pamd: Path, capsys: pytest.CaptureFixture[str],
                                                words: tuple[str, ...], message: str) -> None:
    (pamd / "link").symlink_to(pamd / "svc")
    assert rsp_pam(*words, "--pamd-dir", str(pamd)) == 1
    assert message in capsys.readouterr().err
    assert (pamd / "svc").read_text() == ORIGINAL
    assert sorted(path.name for path in pamd.iterdir()) == ["link", "svc"]


def test_a_file_it_does_not_understand_is_refused(pamd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (pamd / "svc").write_text("session required pam_env.so \\\n  readenv=1\n")
    assert rsp_pam("install", "--service", "svc", "--pamd-dir", str(pamd)) == 1
    assert "a continued line" in capsys.readouterr().err


def test_a_missing_pam_python_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PamError, match="install Debian's libpam-python"):
        find_pam_python((str(tmp_path),))
