"""`touchline bench voice`: N concurrent calls through one gateway process, 20 ms frames both ways.

The gateway runs here, for real (its HTTP server, the voice sessions, the call events in
PostgreSQL). Two more processes play the far ends: N Telnyx media streams, and a loopback agent
that speaks the OpenAI Realtime protocol and answers every `input_audio_buffer.append` with a
`response.audio.delta` of the same audio. Each frame carries (call, sequence) in its first
bytes, and every side stamps it with `time.perf_counter()` (CLOCK_MONOTONIC, one clock for
every process on the machine), so both directions are timed:
- **in**: carrier sends a frame → the agent receives it (carrier → gateway → agent);
- **out**: the agent sends a frame → the carrier receives it (agent → gateway's pacer → carrier).
`cpu_percent` is the gateway process's CPU over the run (100 = one core).
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing
import resource
import struct
import time
import uuid
from multiprocessing.connection import Connection
from typing import Any, Final

import aiohttp
import anyio
import msgspec
from aiohttp import web

from actors.e2e_bench import percentile
from events.postgres import open_postgres_store
from events.settings import Settings
from gateways.voice_token import sign_call_token

FRAME: Final = 160
SECRET: Final = "bench-voice-token"


class VoiceBenchResult(msgspec.Struct, kw_only=True):
    calls: int
    seconds: float
    frames_sent: int
    in_p50_ms: float
    in_p99_ms: float
    out_p50_ms: float
    out_p99_ms: float
    frames_lost: int
    cpu_percent: float
    calls_completed: int
    frames_per_s: float


def _pct(values: list[float], q: float) -> float:
    return percentile(values, q, digits=3)


# --- the load process: carriers and the loopback agent -------------------------------------------


def _frame(call: int, seq: int) -> bytes:
    return struct.pack(">II", call, seq) + b"\x7f" * (FRAME - 8)


class _Load:
    def __init__(self) -> None:
        self.sent: dict[tuple[int, int], float] = {}  # carrier sent (call, seq)
        self.agent_in: dict[tuple[int, int], float] = {}  # the agent got it
        self.agent_out: dict[tuple[int, int], float] = {}  # the agent sent it back
        self.carrier_in: dict[tuple[int, int], float] = {}  # the carrier got it back
        self.completed = 0

    async def agent(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=1 << 20)
        await ws.prepare(request)
        await ws.send_str(json.dumps({"type": "session.created", "session": {}}))
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            event = json.loads(msg.data)
            if event.get("type") != "input_audio_buffer.append":
                if event.get("type") == "session.update":
                    await ws.send_str('{"type":"session.updated"}')
                continue
            audio = base64.b64decode(event["audio"])
            key = struct.unpack(">II", audio[:8])
            now = time.perf_counter()
            self.agent_in[key] = now
            self.agent_out[key] = now
            delta = {"type": "response.audio.delta", "item_id": "echo", "response_id": "r", "delta": event["audio"]}
            await ws.send_str(json.dumps(delta))
        return ws

    async def call(self, http: aiohttp.ClientSession, url: str, index: int, seconds: float) -> None:
        call_id = f"v3:bench-{index}-{uuid.uuid4().hex[:8]}"
        ws = await http.ws_connect(f"{url}?token={sign_call_token(SECRET, call_id)}", max_msg_size=1 << 20)
        start = {
            "event": "start",
            "sequence_number": "1",
            "stream_id": f"s-{index}",
            "start": {"call_control_id": call_id, "media_format": {"encoding": "PCMU", "sample_rate": 8000}},
        }
        await ws.send_str(json.dumps({"event": "connected", "version": "1.0.0"}))
        await ws.send_str(json.dumps(start))

        async def read() -> None:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                if data.get("event") == "media":
                    audio = base64.b64decode(data["media"]["payload"])
                    self.carrier_in[struct.unpack(">II", audio[:8])] = time.perf_counter()

        reader = asyncio.ensure_future(read())
        frames = int(seconds * 50)
        began = time.perf_counter()
        for seq in range(frames):
            await asyncio.sleep(max(0.0, began + seq * 0.02 - time.perf_counter()))
            payload = base64.b64encode(_frame(index, seq)).decode()
            self.sent[(index, seq)] = time.perf_counter()
            await ws.send_str(
                json.dumps(
                    {
                        "event": "media",
                        "sequence_number": str(seq + 2),
                        "media": {"track": "inbound", "chunk": str(seq + 1), "payload": payload},
                    }
                )
            )
        await asyncio.sleep(0.5)  # the last frames' way back
        await ws.send_str(json.dumps({"event": "stop", "sequence_number": str(frames + 2), "stop": {}}))
        await ws.close()
        reader.cancel()
        self.completed += 1


def _agent_main(conn: Connection) -> None:
    """The loopback agent's process: serves until told the calls are over, then reports its times."""

    async def main() -> None:
        load = _Load()
        app = web.Application()
        app.router.add_get("/v1/realtime", load.agent)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        conn.send(f"http://127.0.0.1:{runner.addresses[0][1]}/v1")
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "done"
        await runner.cleanup()
        conn.send({"in": load.agent_in, "out": load.agent_out})

    import uvloop

    uvloop.run(main())


def _carriers_main(conn: Connection, url: str, calls: int, seconds: float) -> None:
    """The carriers' process: N calls streaming for `seconds`, then their times."""

    async def main() -> None:
        load = _Load()
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            tasks = []
            for i in range(calls):
                tasks.append(asyncio.ensure_future(load.call(http, url, i, seconds)))
                await asyncio.sleep(0.02 / max(1, calls // 50))  # calls start spread over a moment
            await asyncio.gather(*tasks, return_exceptions=True)
        conn.send({"sent": load.sent, "in": load.carrier_in, "completed": load.completed})

    import uvloop

    uvloop.run(main())


# --- the gateway process ---------------------------------------------------------------------------


async def run_voice_bench(dsn: str, *, calls: int = 200, seconds: float = 10.0) -> VoiceBenchResult:
    """The gateway here; the agent and the carriers in a process each (the far ends are not the gateway's load)."""
    from gateways.http import serve_http

    ctx = multiprocessing.get_context("spawn")
    agent_conn, agent_child = ctx.Pipe()
    carriers_conn, carriers_child = ctx.Pipe()
    agent = ctx.Process(target=_agent_main, args=(agent_child,), daemon=True)
    agent.start()
    carriers: multiprocessing.process.BaseProcess | None = None
    try:
        agent_url = await anyio.to_thread.run_sync(agent_conn.recv)
        env = {"OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": agent_url, "VOICE_GATEWAY_TOKEN": SECRET}
        async with (
            open_postgres_store(dsn) as store,
            serve_http(store, Settings(), host="127.0.0.1", port=0, env=env) as url,
        ):
            usage = resource.getrusage(resource.RUSAGE_SELF)
            began = time.perf_counter()
            args = (carriers_child, url.replace("http", "ws", 1) + "/telnyx", calls, seconds)
            carriers = ctx.Process(target=_carriers_main, args=args, daemon=True)
            carriers.start()
            sides: dict[str, Any] = await anyio.to_thread.run_sync(carriers_conn.recv)
            wall = time.perf_counter() - began
            after = resource.getrusage(resource.RUSAGE_SELF)
        agent_conn.send("done")
        far: dict[str, Any] = await anyio.to_thread.run_sync(agent_conn.recv)
        sent, carrier_in, agent_in, agent_out = sides["sent"], sides["in"], far["in"], far["out"]
        ins = [(agent_in[k] - t) * 1000 for k, t in sent.items() if k in agent_in]
        outs = [(carrier_in[k] - t) * 1000 for k, t in agent_out.items() if k in carrier_in]
        lost = (len(sent) - len(ins)) + (len(agent_out) - len(outs))
        cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
        return VoiceBenchResult(
            calls=calls,
            seconds=seconds,
            frames_sent=len(sent),
            in_p50_ms=_pct(ins, 0.50),
            in_p99_ms=_pct(ins, 0.99),
            out_p50_ms=_pct(outs, 0.50),
            out_p99_ms=_pct(outs, 0.99),
            frames_lost=lost,
            cpu_percent=round(100 * cpu / wall, 1),
            calls_completed=int(sides["completed"]),
            frames_per_s=round(2 * len(sent) / wall, 1),
        )
    finally:
        for process in (agent, carriers):
            if process is not None:
                process.join(timeout=10)
                if process.is_alive():
                    process.kill()


def format_voice_bench(r: VoiceBenchResult) -> list[str]:
    ok = r.in_p99_ms < 10 and r.out_p99_ms < 10 and r.frames_lost == 0
    return [
        f"{r.calls} concurrent calls for {r.seconds:g} s through one gateway process "
        f"({r.frames_per_s:,.0f} frames/s both ways, {r.calls_completed} calls completed)",
        f"carrier → agent: p50 {r.in_p50_ms:.2f} ms, p99 {r.in_p99_ms:.2f} ms",
        f"agent → carrier: p50 {r.out_p50_ms:.2f} ms, p99 {r.out_p99_ms:.2f} ms",
        f"frames lost {r.frames_lost}, gateway CPU {r.cpu_percent:.0f} % of a core"
        f"  [targets: p99 < 10 ms each way, 0 lost: {'ok' if ok else 'MISSED'}]",
    ]
