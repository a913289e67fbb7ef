"""pam_unshare: a PAM session module that puts each login into a private PID and mount namespace.

`pam_unshare.py` is the file pam_python.so loads (`session required pam_python.so .../pam_unshare.py`);
it runs inside the login program's embedded system Python, so everything it imports (this package,
`rsp.errors`, `rsp.linux`) is standard library plus ctypes, never a third-party module. `pamd_file` and
`pamd_install` are the `rsp pam install|uninstall` side. Design: docs/pam.md.
"""
