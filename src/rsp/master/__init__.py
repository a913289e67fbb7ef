"""The master process of `workers = N`: binds the listeners, starts N worker processes on them, runs the
health checks and the admin socket for the whole machine, reloads, restarts workers that die.

Modules: `control` (the newline-JSON codec of the master<->worker channel), `backend_state` (backend state
as a message and its application to a pool), `spawn` (starting a worker process with its descriptors),
`worker` (the worker process's side), `channel` (one worker's channel as seen by the master), `master` (the
master itself), `machine_admin` (the runtime API answered for the whole machine), `reload_check` (what a
reload validates before it starts anything). See docs/workers.md.
"""
