from __future__ import annotations

from rsp.balance.first import FirstBalancer

from .support import backend, records


def test_fills_backends_in_declaration_order() -> None:
    recs = records(*(backend(n, max_conns=2, weight=w) for n, w in zip("abc", (1, 9, 5), strict=True)))
    bal = FirstBalancer(recs)
    order = []
    for _ in range(6):
        rec = bal.pick()
        assert rec is not None
        rec.active += 1
        order.append(rec.name)
    assert "".join(order) == "aabbcc"
    assert bal.pick() is None
    recs[0].active -= 1
    assert bal.pick() is recs[0]  # a slot freed on the first one: it is first again


def test_without_limits_the_first_up_backend_takes_everything() -> None:
    a, b = recs = records(backend("a"), backend("b"))
    bal = FirstBalancer(recs)
    assert all(bal.pick() is a for _ in range(10))
    a.up = False
    bal.update()
    assert bal.pick() is b
