"""Linux process isolation: namespace syscalls (`syscalls`) and a minimal PID 1 (`pid1`).

The only package that imports ctypes. Shared by the app sandbox (rsp.sandbox) and the PAM helper.
"""
