"""The asyncio boundary: listening sockets, upstream connects, the byte relay."""
