"""Command OS: what an operator types, in Spanish or English, carried out and answered.

Rules first (`actors.command_parse`); when none matches, OpenAI picks an intent from a JSON
schema of them; with no key or OpenAI down, the rule-based intents still work and the answer
says what the rest needs. Replies are phrased by the model when it is there, from templates
otherwise. Every command is an event: who, the text, the intent, rule or model, the outcome.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import asyncpg
import msgspec
import structlog

from actors.autos import Autos
from actors.cadence import suppress_lead
from actors.campaigns import Campaigns
from actors.command_parse import INTENTS, Intent, help_text, language, parse
from actors.programs import Programs
from events.catalog import OperatorCommandReceived, lead_stream, operator_command_stream
from events.errors import CommandRejected, ProviderError
from events.postgres import PostgresEventStore
from gateways.openai_chat import OpenAIChat

log = structlog.get_logger("touchline.command_os")

_UUID: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_PHONE: Final = re.compile(r"^\+\d{8,15}$")


class Answer(msgspec.Struct, kw_only=True):
    command_id: UUID
    intent: str | None
    resolved_by: str  # rule | model | none
    outcome: str  # ok | needs_setup | needs_confirmation | not_found | not_running | unknown | rejected
    reply: str
    language: str
    data: dict[str, Any] = {}
    redirected_from: str | None = None
    phrased_by: str = "template"  # template | model


def _t(lang: str, es: str, en: str) -> str:
    return es if lang == "es" else en


class CommandOS:
    def __init__(self, store: PostgresEventStore, chat: OpenAIChat | None) -> None:
        self.store = store
        self.chat = chat

    async def handle(self, account_id: UUID, text: str, *, operator: str) -> Answer:
        text = text.strip()
        lang = language(text) if text else "es"
        command_id = uuid.uuid4()
        intent = parse(text) if text else None
        resolved_by = "rule" if intent is not None else "none"
        model_note = None
        if intent is None and text and self.chat is not None:
            try:
                guessed = await self.chat.intent(text, INTENTS)
            except ProviderError as exc:
                log.warning("command_os_model_unavailable", error=str(exc))
                model_note = str(exc)
            else:
                if guessed.intent in INTENTS:
                    params = {k: v for k, v in guessed.params.items() if isinstance(v, str | bool | int)}
                    intent = Intent(name=guessed.intent, params=params, matched="model")
                    resolved_by = "model"
        if intent is None:
            needs = (
                _t(
                    lang,
                    " El resto necesita el modelo: configura OPENAI_API_KEY.",
                    " The rest needs the model: set OPENAI_API_KEY.",
                )
                if self.chat is None
                else _t(lang, " El modelo no respondió ahora.", " The model did not answer just now.")
                if model_note
                else ""
            )
            reply = _t(lang, "No entendí eso. Puedes pedirme:\n", "I did not get that. You can ask:\n") + help_text(
                lang
            )
            answer = Answer(
                command_id=command_id,
                intent=None,
                resolved_by=resolved_by,
                outcome="unknown",
                reply=reply + needs,
                language=lang,
            )
        else:
            try:
                outcome, data, draft = await self._run(account_id, intent, lang)
            except CommandRejected as exc:
                outcome, data, draft = "rejected", {"field": exc.field}, str(exc)
            answer = Answer(
                command_id=command_id,
                intent=intent.name,
                resolved_by=resolved_by,
                outcome=outcome,
                reply=draft,
                language=lang,
                data=data,
                redirected_from=intent.redirect_from,
            )
            if self.chat is not None and outcome in ("ok", "needs_setup", "needs_confirmation", "not_found"):
                try:
                    answer.reply = await self.chat.phrase(lang, text, {"intent": intent.name, **data}, draft)
                    answer.phrased_by = "model"
                except ProviderError as exc:
                    log.warning("command_os_phrasing_unavailable", error=str(exc))
        await self.store.append(
            operator_command_stream(command_id),
            [
                OperatorCommandReceived(
                    command_id=command_id,
                    account_id=account_id,
                    operator=operator,
                    text=text[:2000],
                    intent=answer.intent,
                    resolved_by="rule" if resolved_by == "rule" else "model" if resolved_by == "model" else "none",
                    outcome=answer.outcome,
                )
            ],
        )
        log.info("command_os", intent=answer.intent, resolved_by=resolved_by, outcome=answer.outcome)
        return answer

    # --- the intents ------------------------------------------------------------------------------

    async def _run(self, account: UUID, intent: Intent, lang: str) -> tuple[str, dict[str, Any], str]:
        p = intent.params
        match intent.name:
            case "system.status":
                return await self._status(account, lang)
            case "campaign.list":
                return await self._campaigns(account, lang, bool(p.get("active_only")))
            case "campaign.toggle":
                return await self._toggle(account, lang, str(p.get("campaign") or ""), bool(p.get("active", True)))
            case "campaign.toggle.bulk":
                return await self._toggle_all(account, lang, bool(p.get("active", False)))
            case "program.list":
                return await self._programs(account, lang, intent.redirect_from)
            case "program.status":
                return await self._program_status(account, lang, str(p.get("program") or "craigslist"), p.get("city"))
            case "craigslist.cto.start":
                return await self._program_start(account, lang, p)
            case "craigslist.cto.stop":
                return await self._program_stop(account, lang, p)
            case "autos.activate" | "autos.deactivate":
                city = str(p.get("city") or "")
                if not city:
                    return (
                        "rejected",
                        {},
                        _t(
                            lang,
                            "¿Para qué ciudad? Ej.: «activa autos miami».",
                            "Which city? E.g. “activate autos miami”.",
                        ),
                    )
                autos = Autos(self.store)
                result = await (
                    autos.activate(account, city)
                    if intent.name == "autos.activate"
                    else autos.deactivate(account, city)
                )
                return result.outcome, msgspec.to_builtins(result), result.message
            case "lead.list":
                return await self._leads(account, lang, p)
            case "lead.inspect" | "lead.next_action":
                return await self._lead(account, lang, str(p.get("lead") or ""), intent.name == "lead.inspect")
            case "lead.suppress":
                return await self._suppress(account, lang, str(p.get("lead") or ""))
        return "unknown", {}, help_text(lang)

    async def _fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        try:
            return list(await self.store.pool.fetch(sql, *args))
        except asyncpg.UndefinedTableError:
            raise CommandRejected("command_os", "the read models are not built yet: start `touchline up`") from None

    async def _status(self, account: UUID, lang: str) -> tuple[str, dict[str, Any], str]:
        campaigns = await Campaigns(self.store).all(account)
        active = [c.campaign_key for c in campaigns if c.is_active]
        rows = await self._fetch(
            "select (select count(*) from public.leads where account_id = $1"
            "         and created_at > now() - interval '24 hours'),"
            " (select count(*) from public.touch_runs where account_id = $1"
            "   and dispatched_at > now() - interval '24 hours'),"
            " (select count(*) from public.touch_runs where account_id = $1 and status = 'dead_letter'),"
            " (select count(*) from public.lead_programs where account_id = $1 and running)",
            account,
        )
        leads, touches, dead, programs = (int(v or 0) for v in rows[0])
        data = {
            "active_campaigns": active,
            "leads_24h": leads,
            "touches_24h": touches,
            "dead_letters": dead,
            "programs_running": programs,
        }
        draft = _t(
            lang,
            f"{len(active)} campaña(s) activa(s), {programs} programa(s) de LeadGen corriendo; {leads} leads y "
            f"{touches} toques enviados en 24 h" + (f"; {dead} toque(s) en dead letter" if dead else "") + ".",
            f"{len(active)} active campaign(s), {programs} LeadGen program(s) running; {leads} leads and {touches} "
            f"touches sent in 24 h" + (f"; {dead} touch(es) dead-lettered" if dead else "") + ".",
        )
        return "ok", data, draft

    async def _campaigns(self, account: UUID, lang: str, active_only: bool) -> tuple[str, dict[str, Any], str]:
        campaigns = [c for c in await Campaigns(self.store).all(account) if c.is_active or not active_only]
        listed = [{"campaign_key": c.campaign_key, "name": c.name, "is_active": c.is_active} for c in campaigns]
        if not listed:
            draft = _t(
                lang,
                "No hay campañas activas ahora." if active_only else "No hay campañas todavía.",
                "No campaigns are active now." if active_only else "There are no campaigns yet.",
            )
        else:
            names = ", ".join(
                f"{c['name']} ({c['campaign_key']}{'' if c['is_active'] else _t(lang, ', pausada', ', paused')})"
                for c in listed
            )
            draft = _t(
                lang,
                f"Campañas{' activas' if active_only else ''}: {names}.",
                f"{'Active c' if active_only else 'C'}ampaigns: {names}.",
            )
        return "ok", {"campaigns": listed}, draft

    async def _find_campaign(self, account: UUID, wanted: str) -> tuple[Any, list[str]]:
        campaigns = await Campaigns(self.store).all(account)
        key = wanted.strip().lower()
        for c in campaigns:
            if key in (c.campaign_key.lower(), c.name.lower()):
                return c, []
        return None, [c.campaign_key for c in campaigns]

    async def _toggle(self, account: UUID, lang: str, wanted: str, active: bool) -> tuple[str, dict[str, Any], str]:
        campaign, known = await self._find_campaign(account, wanted)
        if campaign is None:
            return (
                "not_found",
                {"known": known},
                _t(
                    lang,
                    f"No encuentro la campaña «{wanted}». Campañas: {', '.join(known) or 'ninguna'}.",
                    f"No campaign “{wanted}”. Campaigns: {', '.join(known) or 'none'}.",
                ),
            )
        campaigns = Campaigns(self.store)
        changed = await (
            campaigns.activate(account, campaign.campaign_id, reason="command os")
            if active
            else campaigns.pause(account, campaign.campaign_id, reason="command os")
        )
        state = _t(lang, "activa" if active else "pausada", "active" if active else "paused")
        draft = _t(
            lang,
            f"{campaign.name} {'ahora está' if changed else 'ya estaba'} {state}.",
            f"{campaign.name} {'is now' if changed else 'was already'} {state}.",
        )
        return "ok", {"campaign_key": campaign.campaign_key, "is_active": active, "changed": changed}, draft

    async def _toggle_all(self, account: UUID, lang: str, active: bool) -> tuple[str, dict[str, Any], str]:
        campaigns = Campaigns(self.store)
        if not active:
            paused = await campaigns.pause_all(account, reason="command os: pause all")
            return (
                "ok",
                {"paused": [str(c) for c in paused]},
                _t(lang, f"Pausé {len(paused)} campaña(s).", f"Paused {len(paused)} campaign(s)."),
            )
        activated = []
        for c in await campaigns.all(account):
            if not c.is_active and await campaigns.activate(account, c.campaign_id, reason="command os: activate all"):
                activated.append(c.campaign_key)
        return (
            "ok",
            {"activated": activated},
            _t(lang, f"Activé {len(activated)} campaña(s).", f"Activated {len(activated)} campaign(s)."),
        )

    async def _programs(self, account: UUID, lang: str, redirected: str | None) -> tuple[str, dict[str, Any], str]:
        rows = await self._fetch(
            "select program_key, city, running from public.lead_programs where account_id = $1 order by 1, 2", account
        )
        listed = [{"program": r["program_key"], "city": r["city"], "running": r["running"]} for r in rows]
        note = (
            _t(
                lang,
                "Craigslist y Encuentra24 son programas de LeadGen, no campañas. ",
                "Craigslist and Encuentra24 are LeadGen programs, not campaigns. ",
            )
            if redirected
            else ""
        )
        if not listed:
            return (
                "ok",
                {"programs": []},
                note
                + _t(
                    lang,
                    "Ningún programa iniciado. Ej.: «prende craigslist miami».",
                    "No program started yet. E.g. “start craigslist miami”.",
                ),
            )
        running, stopped = _t(lang, "corriendo", "running"), _t(lang, "detenido", "stopped")
        text = ", ".join(f"{p['program']} {p['city']} ({running if p['running'] else stopped})" for p in listed)
        return "ok", {"programs": listed}, note + _t(lang, f"Programas: {text}.", f"Programs: {text}.")

    async def _program_status(
        self, account: UUID, lang: str, program: str, city: object
    ) -> tuple[str, dict[str, Any], str]:
        from gateways.api_programs import _detail

        async with self.store.pool.acquire() as conn:
            try:
                detail = await _detail(conn, account, program, str(city) if city else None)
            except asyncpg.UndefinedTableError:
                raise CommandRejected("program.status", "the read models are not built yet") from None
        data: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(detail))  # it holds raw JSON pieces
        where = f"{program} {city}" if city else program
        draft = _t(
            lang,
            f"{where}: {detail.health.status}. Siguiente paso: {detail.next_action.text}",
            f"{where}: {detail.health.status}. Next: {detail.next_action.text}",
        )
        return "ok", {"status": detail.health.status, "next_action": data["next_action"], "city": city}, draft

    async def _program_start(
        self, account: UUID, lang: str, p: Mapping[str, object]
    ) -> tuple[str, dict[str, Any], str]:
        city = str(p.get("city") or "")
        if not city:
            return (
                "rejected",
                {},
                _t(
                    lang,
                    "¿En qué ciudad? Ej.: «prende craigslist miami».",
                    "Which city? E.g. “start craigslist miami”.",
                ),
            )
        result = await Programs(self.store).start(
            account,
            str(p.get("program") or "craigslist"),
            city,
            override_routing=bool(p.get("override_routing")),
            confirm=bool(p.get("confirm")),
            started_by="command_os",
        )
        extra = ""
        if result.outcome == "needs_confirmation":
            extra = _t(
                lang,
                " ¿Lo confirmo? Di «sí, prende craigslist " + result.city + " de nuevo».",
                " Confirm? Say “yes, start craigslist " + result.city + " again”.",
            )
        return result.outcome, msgspec.to_builtins(result), result.message + extra

    async def _program_stop(self, account: UUID, lang: str, p: Mapping[str, object]) -> tuple[str, dict[str, Any], str]:
        city = str(p.get("city") or "")
        if not city:
            return "rejected", {}, _t(lang, "¿Qué ciudad apago?", "Which city should I stop?")
        result = await Programs(self.store).stop(
            account, str(p.get("program") or "craigslist"), city, stopped_by="command_os"
        )
        return result.outcome, msgspec.to_builtins(result), result.message

    async def _leads(self, account: UUID, lang: str, p: Mapping[str, object]) -> tuple[str, dict[str, Any], str]:
        raw_limit = p.get("limit")
        limit = max(1, min(raw_limit if isinstance(raw_limit, int) else 10, 100))
        since = "today" if p.get("since") == "today" else None
        rows = await self._fetch(
            "select id, name, phone, title, status, source, created_at from public.leads where account_id = $1"
            " and ($2::text is null or status = $2) and ($3::text is null or source = $3)"
            " and ($4::boolean is not true or created_at >= date_trunc('day', now()))"
            " order by created_at desc limit $5",
            account,
            p.get("status"),
            p.get("source"),
            since == "today",
            limit,
        )
        leads = [{k: (str(v) if isinstance(v, UUID | datetime) else v) for k, v in dict(r).items()} for r in rows]
        if not leads:
            return "ok", {"leads": []}, _t(lang, "No hay leads con ese filtro.", "No leads match that.")
        lines = "; ".join(
            f"{row['title'] or '?'} ({row['phone'] or _t(lang, 'sin teléfono', 'no phone')}, {row['status']})"
            for row in leads
        )
        return "ok", {"leads": leads}, _t(lang, f"{len(leads)} lead(s): {lines}.", f"{len(leads)} lead(s): {lines}.")

    async def _lead_row(self, account: UUID, wanted: str) -> asyncpg.Record | None:
        wanted = wanted.strip()
        if _UUID.match(wanted):
            rows = await self._fetch(
                "select * from public.leads where account_id = $1 and id = $2", account, UUID(wanted)
            )
        elif _PHONE.match(wanted):
            rows = await self._fetch(
                "select * from public.leads where account_id = $1 and phone = $2 order by created_at desc limit 1",
                account,
                wanted,
            )
        else:
            rows = await self._fetch(
                "select * from public.leads where account_id = $1 and name ilike $2 order by created_at desc limit 1",
                account,
                f"%{wanted}%",
            )
        return rows[0] if rows else None

    async def _lead(self, account: UUID, lang: str, wanted: str, whole: bool) -> tuple[str, dict[str, Any], str]:
        row = await self._lead_row(account, wanted) if wanted else None
        if row is None:
            return "not_found", {}, _t(lang, f"No encuentro el lead «{wanted}».", f"No lead “{wanted}”.")
        lead_id = row["id"]
        action = await self._fetch(
            "select next_action, next_action_at, recommended_channel, priority_score"
            " from public.lead_next_action_view_v5 where lead_id = $1",
            lead_id,
        )
        nxt = dict(action[0]) if action else {}
        data: dict[str, Any] = {
            "lead_id": str(lead_id),
            "status": row["status"],
            "title": row["title"],
            "phone": row["phone"],
            "next_action": nxt.get("next_action"),
            "next_action_at": str(nxt["next_action_at"]) if nxt.get("next_action_at") else None,
            "channel": nxt.get("recommended_channel"),
        }
        when = f" ({data['next_action_at']})" if data["next_action_at"] else ""
        draft = _t(
            lang,
            f"{row['title'] or 'Lead'} — {row['status']}. Siguiente: {data['next_action'] or 'nada'}{when}.",
            f"{row['title'] or 'Lead'} — {row['status']}. Next: {data['next_action'] or 'nothing'}{when}.",
        )
        if whole:
            history = await self.store.read_stream(lead_stream(lead_id))
            data["history"] = [{"type": e.type, "at": e.recorded_at.isoformat()} for e in history]
        return "ok", data, draft

    async def _suppress(self, account: UUID, lang: str, wanted: str) -> tuple[str, dict[str, Any], str]:
        row = await self._lead_row(account, wanted) if wanted else None
        if row is None:
            return "not_found", {}, _t(lang, f"No encuentro el lead «{wanted}».", f"No lead “{wanted}”.")
        if not await suppress_lead(self.store, account, row["id"], "operator: Command OS"):
            return (
                "ok",
                {"lead_id": str(row["id"]), "changed": False},
                _t(lang, "Ese lead ya estaba suprimido.", "That lead was already suppressed."),
            )
        return (
            "ok",
            {"lead_id": str(row["id"]), "changed": True},
            _t(lang, "Listo: no se le contactará más.", "Done: they will not be contacted again."),
        )
