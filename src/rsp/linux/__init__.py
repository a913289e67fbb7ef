"""Linux syscalls Python lacks: namespace syscalls and fallocate's hole punching (`syscalls`), inotify
(`inotify`), and a minimal PID 1 (`pid1`).

The only package that imports ctypes. Shared by the app sandbox (rsp.sandbox), the PAM helper and the
response cache's spools (rsp.cache.spool, rsp.cache.wakeups).
"""
