"""The h2 connection object as rsp configures it: local SETTINGS from the listener, h2's own checks set to
rsp's limits, and the one place rsp steps around h2 (the concurrent-stream check, below)."""

from __future__ import annotations

from collections.abc import Iterable

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.settings import SettingCodes, Settings

from rsp.config.model import Http2Settings
from rsp.http2.codes import MAX_STREAM_ID
from rsp.http2.hpack_codec import HeaderDecoder, HeaderEncoder


class AdvertisedSettings(Settings):
    """Local settings that advertise SETTINGS_MAX_CONCURRENT_STREAMS but let h2 accept streams beyond it.

    h2 treats a HEADERS frame over the limit as a connection error (TooManyStreamsError, GOAWAY). RFC 9113
    §5.1.2 asks for a stream error, PROTOCOL_ERROR or REFUSED_STREAM, and REFUSED_STREAM tells the client
    that the request was not processed and may be retried (§8.7). So h2 decodes every header block (the
    HPACK state must stay in step, §4.3), and rsp refuses the streams over the limit itself (rsp.http2.server).
    The advertised value is what `items()` (the SETTINGS frame) shows; `max_concurrent_streams`, what h2
    reads for its own check, is the protocol's ceiling.
    """

    @property
    def max_concurrent_streams(self) -> int:
        return MAX_STREAM_ID

    @max_concurrent_streams.setter
    def max_concurrent_streams(self, value: int) -> None:
        self[SettingCodes.MAX_CONCURRENT_STREAMS] = value


class H2Decoder:
    """rsp's HPACK decoder (rsp.http2.hpack_codec) where h2 expects an `hpack.Decoder`: h2 reads and sets
    the two limits below and calls decode(). Its errors are rsp's (HpackDecodingError, an
    Http2ConnectionError): they pass through h2 and end the connection with COMPRESSION_ERROR (RFC 9113
    §4.3) or ENHANCE_YOUR_CALM (a header list over the limit), where h2 would say PROTOCOL_ERROR."""

    __slots__ = ("inner",)

    def __init__(self, settings: Http2Settings) -> None:
        self.inner = HeaderDecoder(settings.header_table_size, settings.max_header_list_size)

    @property
    def max_header_list_size(self) -> int:
        return self.inner.max_header_list_size

    @max_header_list_size.setter
    def max_header_list_size(self, value: int) -> None:
        self.inner.max_header_list_size = value

    @property
    def max_allowed_table_size(self) -> int:
        return self.inner.max_table_size

    @max_allowed_table_size.setter
    def max_allowed_table_size(self, value: int) -> None:
        self.inner.max_table_size = value

    def decode(self, data: bytes, raw: bool = True) -> list[tuple[bytes, bytes]]:
        return self.inner.decode(bytes(data))


class H2Encoder:
    """rsp's HPACK encoder where h2 expects an `hpack.Encoder` (h2 sets header_table_size from the client's
    SETTINGS_HEADER_TABLE_SIZE and calls encode())."""

    __slots__ = ("inner",)

    def __init__(self) -> None:
        self.inner = HeaderEncoder()

    @property
    def header_table_size(self) -> int:
        return self.inner.table.max_size

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        self.inner.set_max_table_size(value)

    def encode(self, headers: Iterable[tuple[bytes, bytes]], huffman: bool = True) -> bytes:
        return self.inner.encode([(name, value) for name, value in headers])


def new_h2_connection(settings: Http2Settings) -> H2Connection:
    """A server-side H2Connection with rsp's settings, its preamble (our SETTINGS and the connection window's
    WINDOW_UPDATE) already queued."""
    config = H2Configuration(
        client_side=False,
        header_encoding=None,
        # rsp checks requests itself (rsp.http2.heads): h2's failures are connection errors where RFC 9113
        # §8.1.1 wants a stream error, and its outbound checks repeat what heads.response_fields guarantees.
        validate_inbound_headers=False,
        normalize_inbound_headers=False,
        validate_outbound_headers=False,
        normalize_outbound_headers=False,
    )
    conn = H2Connection(config=config)
    conn.local_settings = AdvertisedSettings(client=False, initial_values={
        SettingCodes.MAX_CONCURRENT_STREAMS: settings.max_concurrent_streams,
        SettingCodes.INITIAL_WINDOW_SIZE: settings.initial_window_size,
        SettingCodes.MAX_FRAME_SIZE: settings.max_frame_size,
        SettingCodes.HEADER_TABLE_SIZE: settings.header_table_size,
        SettingCodes.MAX_HEADER_LIST_SIZE: settings.max_header_list_size,
        SettingCodes.ENABLE_PUSH: 0,
    })
    # What H2Connection.__init__ derived from its default local settings, derived again from ours.
    conn.max_inbound_frame_size = settings.max_frame_size
    # HPACK is rsp's own (compiled): h2's pure-Python hpack cost ~40% of a small request (bench/h2_codec_cost.py).
    # Until the client acknowledges our SETTINGS its encoder may use the protocol's 4096 (RFC 7541 §4.2).
    decoder = H2Decoder(settings)
    decoder.max_allowed_table_size = max(settings.header_table_size, 4096)
    conn.decoder = decoder  # type: ignore[assignment]
    conn.encoder = H2Encoder()  # type: ignore[assignment]
    conn.initiate_connection()
    extra = settings.connection_window - 65535  # the connection window starts at 65535 (RFC 9113 §6.9.2)
    if extra > 0:
        conn.increment_flow_control_window(extra)
    return conn
