"""Command OS rules: phrases as operators type them, in Spanish and English, to intents and parameters."""

from __future__ import annotations

import time

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.command_parse import EXAMPLES, INTENTS, Intent, help_text, language, normalise, parse

Params = dict[str, str | bool | int]

SPEC_INTENTS = {
    "system.status",
    "campaign.list",
    "campaign.toggle",
    "campaign.toggle.bulk",
    "program.list",
    "program.status",
    "craigslist.cto.start",
    "craigslist.cto.stop",
    "autos.activate",
    "autos.deactivate",
    "lead.list",
    "lead.inspect",
    "lead.next_action",
    "lead.suppress",
}

UUID = "3f2a9c1e-4b2d-4c3e-9f10-1a2b3c4d5e6f"
PHONE = "+13055550100"
CL_MIAMI: Params = {"program": "craigslist", "city": "miami"}
CL_TAMPA: Params = {"program": "craigslist", "city": "tampa"}
CL_ORLANDO: Params = {"program": "craigslist", "city": "orlando"}
CL_FLL: Params = {"program": "craigslist", "city": "fortlauderdale"}

# (what the operator typed, the intent, its params); a redirect has its own table below
PHRASES: list[tuple[str, str, Params]] = [
    # system.status
    ("estado del sistema", "system.status", {}),
    ("¿cómo va todo?", "system.status", {}),
    ("oye, ¿cómo va todo?", "system.status", {}),
    ("system status", "system.status", {}),
    ("status", "system.status", {}),
    ("como esta el sistema", "system.status", {}),
    ("¿Cómo está el SISTEMA?", "system.status", {}),
    ("how is everything", "system.status", {}),
    ("how's it going?", "system.status", {}),
    ("¿todo bien?", "system.status", {}),
    ("health check", "system.status", {}),
    # campaign.list
    ("campañas activas ahora", "campaign.list", {"active_only": True}),
    ("¿Qué campañas están activas?", "campaign.list", {"active_only": True}),
    ("que campanas estan activas", "campaign.list", {"active_only": True}),
    ("campanas prendidas", "campaign.list", {"active_only": True}),
    ("¿hay alguna campaña activa?", "campaign.list", {"active_only": True}),
    ("list campaigns", "campaign.list", {"active_only": False}),
    ("which campaigns are running", "campaign.list", {"active_only": True}),
    ("which campaigns are running now", "campaign.list", {"active_only": True}),
    ("show me active campaigns please", "campaign.list", {"active_only": True}),
    ("lista de campañas", "campaign.list", {"active_only": False}),
    ("what campaigns do we have", "campaign.list", {"active_only": False}),
    ("¿cuántas campañas hay?", "campaign.list", {"active_only": False}),
    ("how are the campaigns doing", "campaign.list", {"active_only": False}),
    ("outbound", "campaign.list", {"active_only": False}),
    ("¿qué campañas están pausadas?", "campaign.list", {"active_only": False, "paused_only": True}),
    ("campañas que no están activas", "campaign.list", {"active_only": False, "paused_only": True}),
    ("campañas en pausa", "campaign.list", {"active_only": False, "paused_only": True}),
    # campaign.toggle: the key as typed, or the name as typed (casing kept)
    ("prende la campaña autos_outbound_miami", "campaign.toggle", {"campaign": "autos_outbound_miami", "active": True}),
    ("activa la campaña autos_outbound_tampa", "campaign.toggle", {"campaign": "autos_outbound_tampa", "active": True}),
    ("pausa la campaña Autos Miami", "campaign.toggle", {"campaign": "Autos Miami", "active": False}),
    ('Por favor, PAUSA la campaña "Autos Miami" ya', "campaign.toggle", {"campaign": "Autos Miami", "active": False}),
    ("campaña Autos Miami pausa", "campaign.toggle", {"campaign": "Autos Miami", "active": False}),
    ("activate campaign Spring Promo", "campaign.toggle", {"campaign": "Spring Promo", "active": True}),
    (
        "turn off campaign autos_outbound_tampa",
        "campaign.toggle",
        {"campaign": "autos_outbound_tampa", "active": False},
    ),
    ("turn off the Autos Miami campaign", "campaign.toggle", {"campaign": "Autos Miami", "active": False}),
    ("please pause the Autos Tampa campaign", "campaign.toggle", {"campaign": "Autos Tampa", "active": False}),
    (
        "pon en pausa la campaña autos_outbound_miami",
        "campaign.toggle",
        {"campaign": "autos_outbound_miami", "active": False},
    ),
    (
        "reanuda la campaña autos_outbound_miami",
        "campaign.toggle",
        {"campaign": "autos_outbound_miami", "active": True},
    ),
    (
        "da de baja la campaña autos_outbound_miami",
        "campaign.toggle",
        {"campaign": "autos_outbound_miami", "active": False},
    ),
    # campaign.toggle.bulk
    ("pausa todas las campañas", "campaign.toggle.bulk", {"active": False}),
    ("apaga todo lo que está corriendo", "campaign.toggle.bulk", {"active": False}),
    ("pause all campaigns", "campaign.toggle.bulk", {"active": False}),
    ("pause all running", "campaign.toggle.bulk", {"active": False}),
    ("activa todas las campañas", "campaign.toggle.bulk", {"active": True}),
    ("reactiva todas las campañas", "campaign.toggle.bulk", {"active": True}),
    ("switch off all campaigns", "campaign.toggle.bulk", {"active": False}),
    ("stop everything now", "campaign.toggle.bulk", {"active": False}),
    ("para todo", "campaign.toggle.bulk", {"active": False}),
    ("detén todo", "campaign.toggle.bulk", {"active": False}),
    # program.list
    ("programas", "program.list", {}),
    ("¿qué programas hay?", "program.list", {}),
    ("list programs", "program.list", {}),
    ("leadgen", "program.list", {}),
    ("fuentes de leads", "program.list", {}),
    ("hola, ¿qué programas están corriendo?", "program.list", {}),
    ("what programs are running", "program.list", {}),
    # program.status
    ("estado de craigslist miami", "program.status", CL_MIAMI),
    ("¿cómo va craigslist en tampa?", "program.status", CL_TAMPA),
    ("status craigslist miami", "program.status", CL_MIAMI),
    ("encuentra24 costa rica status", "program.status", {"program": "encuentra24", "city": "costa-rica"}),
    ("¿cómo va encuentra24?", "program.status", {"program": "encuentra24"}),
    ("craigslist", "program.status", {"program": "craigslist"}),
    ("is craigslist miami on?", "program.status", CL_MIAMI),
    ("¿está corriendo craigslist en miami?", "program.status", CL_MIAMI),
    ("¿craigslist está prendido en tampa?", "program.status", CL_TAMPA),
    ("what's the status of craigslist in miami", "program.status", CL_MIAMI),
    # craigslist.cto.start
    ("prende craigslist miami", "craigslist.cto.start", CL_MIAMI),
    ("Prende Craigslist Miami, por favor", "craigslist.cto.start", CL_MIAMI),
    ("PRENDE CRAIGSLIST MIAMI!!!", "craigslist.cto.start", CL_MIAMI),
    ("prendé craigslist miami", "craigslist.cto.start", CL_MIAMI),
    ("enciende craigslist en Miami", "craigslist.cto.start", CL_MIAMI),
    ("arranca craigslist para tampa", "craigslist.cto.start", CL_TAMPA),
    ("start craigslist miami", "craigslist.cto.start", CL_MIAMI),
    ("turn on craigslist in orlando", "craigslist.cto.start", CL_ORLANDO),
    ("switch on craigslist orlando", "craigslist.cto.start", CL_ORLANDO),
    ("enable craigslist tampa", "craigslist.cto.start", CL_TAMPA),
    ("oye por favor prende craigslist en miami ahora", "craigslist.cto.start", CL_MIAMI),
    ("hey please start craigslist in miami now", "craigslist.cto.start", CL_MIAMI),
    ("¿Puedes prender craigslist en Miami?", "craigslist.cto.start", CL_MIAMI),
    ("Oye, ¿me prendes craigslist en Fort Lauderdale porfa?", "craigslist.cto.start", CL_FLL),
    ("craigslist miami prende", "craigslist.cto.start", CL_MIAMI),
    ("miami craigslist start", "craigslist.cto.start", CL_MIAMI),
    ("craigslist miami on", "craigslist.cto.start", CL_MIAMI),
    ("pon craigslist miami en marcha", "craigslist.cto.start", CL_MIAMI),
    ("cl miami start", "craigslist.cto.start", CL_MIAMI),
    ("craiglist miami prende", "craigslist.cto.start", CL_MIAMI),
    ("prende craigslist en New York", "craigslist.cto.start", {"program": "craigslist", "city": "newyork"}),
    ("enciende craigslist en nueva york", "craigslist.cto.start", {"program": "craigslist", "city": "newyork"}),
    ("start craigslist fort lauderdale", "craigslist.cto.start", CL_FLL),
    ("turn on craigslist in san antonio", "craigslist.cto.start", {"program": "craigslist", "city": "sanantonio"}),
    ("inicia craigslist en san diego", "craigslist.cto.start", {"program": "craigslist", "city": "sandiego"}),
    ("activa encuentra24 panama", "craigslist.cto.start", {"program": "encuentra24", "city": "panama"}),
    ("activa encuentra24 en costa rica", "craigslist.cto.start", {"program": "encuentra24", "city": "costa-rica"}),
    ("enciende encuentra24 en el salvador", "craigslist.cto.start", {"program": "encuentra24", "city": "el-salvador"}),
    ("activa encuentra 24 en honduras", "craigslist.cto.start", {"program": "encuentra24", "city": "honduras"}),
    ("start encuentra24 costa rica", "craigslist.cto.start", {"program": "encuentra24", "city": "costa-rica"}),
    ("enciende el programa de craigslist en miami", "craigslist.cto.start", CL_MIAMI),
    # … with confirm / override_routing
    ("prende craigslist miami, sí, confírmalo", "craigslist.cto.start", {**CL_MIAMI, "confirm": True}),
    ("prende craigslist miami --confirm", "craigslist.cto.start", {**CL_MIAMI, "confirm": True}),
    ("prende craigslist miami aunque ya esté corriendo", "craigslist.cto.start", {**CL_MIAMI, "confirm": True}),
    ("sí, prende craigslist miami de nuevo", "craigslist.cto.start", {**CL_MIAMI, "confirm": True}),
    ("start craigslist miami again", "craigslist.cto.start", {**CL_MIAMI, "confirm": True}),
    ("prende craigslist miami sin routing", "craigslist.cto.start", {**CL_MIAMI, "override_routing": True}),
    ("start craigslist miami, override routing", "craigslist.cto.start", {**CL_MIAMI, "override_routing": True}),
    ("start craigslist miami --override-routing", "craigslist.cto.start", {**CL_MIAMI, "override_routing": True}),
    (
        "activa craigslist en miami, ignora el routing y confírmalo",
        "craigslist.cto.start",
        {**CL_MIAMI, "confirm": True, "override_routing": True},
    ),
    # craigslist.cto.stop
    ("apaga craigslist miami", "craigslist.cto.stop", CL_MIAMI),
    ("deten craigslist en tampa", "craigslist.cto.stop", CL_TAMPA),
    ("detén craigslist en Tampa", "craigslist.cto.stop", CL_TAMPA),
    ("para craigslist miami", "craigslist.cto.stop", CL_MIAMI),
    ("para craigslist en miami ya", "craigslist.cto.stop", CL_MIAMI),
    ("stop craigslist miami", "craigslist.cto.stop", CL_MIAMI),
    ("turn off craigslist orlando", "craigslist.cto.stop", CL_ORLANDO),
    ("turn craigslist miami off", "craigslist.cto.stop", CL_MIAMI),
    ("craigslist miami off", "craigslist.cto.stop", CL_MIAMI),
    ("pon craigslist miami en pausa", "craigslist.cto.stop", CL_MIAMI),
    ("put craigslist miami on hold", "craigslist.cto.stop", CL_MIAMI),
    ("desactiva craigslist miami", "craigslist.cto.stop", CL_MIAMI),
    ("pausa craigslist miami", "craigslist.cto.stop", CL_MIAMI),
    ("apagá craigslist tampa ya mismo", "craigslist.cto.stop", CL_TAMPA),
    ("ok dale, apaga craigslist tampa gracias", "craigslist.cto.stop", CL_TAMPA),
    ("disable craigslist tampa", "craigslist.cto.stop", CL_TAMPA),
    ("shut down craigslist in los angeles", "craigslist.cto.stop", {"program": "craigslist", "city": "losangeles"}),
    ("apaga encuentra24 guatemala", "craigslist.cto.stop", {"program": "encuentra24", "city": "guatemala"}),
    # autos.*
    ("activa autos miami", "autos.activate", {"city": "miami"}),
    ("prende el embudo de autos en miami", "autos.activate", {"city": "miami"}),
    ("activate autos miami", "autos.activate", {"city": "miami"}),
    ("activate the autos funnel for fort lauderdale", "autos.activate", {"city": "fortlauderdale"}),
    ("activa el funnel completo de autos para miami", "autos.activate", {"city": "miami"}),
    ("autos miami on", "autos.activate", {"city": "miami"}),
    ("prende autos miami aunque ya esté corriendo", "autos.activate", {"city": "miami", "confirm": True}),
    ("apaga autos tampa", "autos.deactivate", {"city": "tampa"}),
    ("deactivate autos in tampa", "autos.deactivate", {"city": "tampa"}),
    ("apaga el embudo de autos con craigslist en miami", "autos.deactivate", {"city": "miami"}),
    # lead.list
    ("leads nuevos", "lead.list", {"status": "new"}),
    ("leads", "lead.list", {}),
    ("muéstrame los leads de hoy", "lead.list", {"since": "today"}),
    ("muéstrame los leads nuevos", "lead.list", {"status": "new"}),
    ("muéstrame los leads nuevos de hoy", "lead.list", {"status": "new", "since": "today"}),
    ("list leads", "lead.list", {}),
    ("leads de craigslist", "lead.list", {"source": "craigslist"}),
    ("últimos 20 leads", "lead.list", {"limit": 20}),
    ("top 10 leads", "lead.list", {"limit": 10}),
    ("los 3 últimos leads de hoy", "lead.list", {"limit": 3, "since": "today"}),
    ("el último lead", "lead.list", {"limit": 1}),
    ("leads de las últimas 24 horas", "lead.list", {"since": "24h"}),
    ("leads de los últimos 7 días", "lead.list", {"since": "7d"}),
    ("leads contactados ayer", "lead.list", {"status": "contacted", "since": "yesterday"}),
    ("leads que respondieron esta semana", "lead.list", {"status": "replied", "since": "this_week"}),
    ("leads suprimidos", "lead.list", {"status": "suppressed"}),
    ("new leads from craigslist today", "lead.list", {"status": "new", "source": "craigslist", "since": "today"}),
    ("how many leads today", "lead.list", {"since": "today"}),
    ("hay algún lead nuevo?", "lead.list", {"status": "new"}),
    ("¿cuántos leads nuevos hay hoy en miami?", "lead.list", {"status": "new", "city": "miami", "since": "today"}),
    ("leads de encuentra24 panama", "lead.list", {"source": "encuentra24", "city": "panama"}),
    # lead.inspect: uuid, phone in E.164, e-mail, a uuid's first digits, or a name as typed
    ("muéstrame el lead +1 305 555 0100", "lead.inspect", {"lead": PHONE}),
    ("show lead +13055550100", "lead.inspect", {"lead": PHONE}),
    ("quien es el +1 305-555-0100", "lead.inspect", {"lead": PHONE}),
    ("lead (305) 555-0100", "lead.inspect", {"lead": PHONE}),
    ("lead 305.555.0100", "lead.inspect", {"lead": PHONE}),
    ("lead 1-305-555-0100", "lead.inspect", {"lead": PHONE}),
    ("lead +52 55 1234 5678", "lead.inspect", {"lead": "+525512345678"}),
    (f"lead {UUID}", "lead.inspect", {"lead": UUID}),
    (f"¿me muestras el lead {UUID.upper()}?", "lead.inspect", {"lead": UUID}),
    ("lead 3f2a...", "lead.inspect", {"lead": "3f2a"}),
    ("info del lead 3F2A9C1E", "lead.inspect", {"lead": "3f2a9c1e"}),
    ("inspecciona el lead de ana", "lead.inspect", {"lead": "ana"}),
    ("lead de Ana García", "lead.inspect", {"lead": "Ana García"}),
    ("show lead ana@example.com", "lead.inspect", {"lead": "ana@example.com"}),
    # lead.next_action
    ("¿qué sigue con el lead +13055550100?", "lead.next_action", {"lead": PHONE}),
    (f"next action for lead {UUID}", "lead.next_action", {"lead": UUID}),
    ("próxima acción del lead María García", "lead.next_action", {"lead": "María García"}),
    ("qué hago con el lead de juan", "lead.next_action", {"lead": "juan"}),
    ("lead (305) 555-0100 qué sigue", "lead.next_action", {"lead": PHONE}),
    ("what's next for lead ana@example.com", "lead.next_action", {"lead": "ana@example.com"}),
    # lead.suppress
    ("no contactes más al +1 305 555 0100", "lead.suppress", {"lead": PHONE}),
    ("no contactes más al +1 (305) 555-0100", "lead.suppress", {"lead": PHONE}),
    ("suprime el lead +13055550100", "lead.suppress", {"lead": PHONE}),
    ("suprime al 3055550100", "lead.suppress", {"lead": PHONE}),
    ("suppress lead Juan Pérez", "lead.suppress", {"lead": "Juan Pérez"}),
    ("do not contact (305) 555-0100", "lead.suppress", {"lead": PHONE}),
    ("don't contact lead ana@example.com", "lead.suppress", {"lead": "ana@example.com"}),
    ("da de baja al lead ana", "lead.suppress", {"lead": "ana"}),
    ("dale de baja a +13055550100", "lead.suppress", {"lead": PHONE}),
    ("no llames más a +13055550100", "lead.suppress", {"lead": PHONE}),
    ("stop contacting +1 305 555 0100", "lead.suppress", {"lead": PHONE}),
    ("opt out +1-305-555-0100", "lead.suppress", {"lead": PHONE}),
    ("no le escribas más a Ana López", "lead.suppress", {"lead": "Ana López"}),
]


@pytest.mark.parametrize(("text", "name", "params"), PHRASES, ids=[p[0] for p in PHRASES])
def test_a_phrase_gives_its_intent_and_params(text: str, name: str, params: Params) -> None:
    intent = parse(text)
    assert intent is not None, text
    assert (intent.name, intent.params) == (name, params)
    assert intent.redirect_from is None
    assert intent.matched.startswith(intent.name + ":")
    assert 0.0 < intent.confidence <= 1.0


REDIRECTS: list[tuple[str, str, Params, str]] = [
    ("campañas de craigslist", "program.status", {"program": "craigslist"}, "campaign.list"),
    ("is the craigslist campaign on", "program.status", {"program": "craigslist"}, "campaign.list"),
    ("¿la campaña de craigslist está prendida?", "program.status", {"program": "craigslist"}, "campaign.list"),
    ("¿la campaña de craigslist de miami está prendida?", "program.status", CL_MIAMI, "campaign.list"),
    ("autopilot campaigns", "program.list", {}, "campaign.list"),
    ("campañas del autopilot", "program.list", {}, "campaign.list"),
    ("campañas de leadgen activas", "program.list", {}, "campaign.list"),
    ("prende la campaña de craigslist en miami", "craigslist.cto.start", CL_MIAMI, "campaign.toggle"),
    ("turn off the craigslist campaign in miami", "craigslist.cto.stop", CL_MIAMI, "campaign.toggle"),
]


@pytest.mark.parametrize(("text", "name", "params", "redirected"), REDIRECTS, ids=[r[0] for r in REDIRECTS])
def test_campaigns_of_craigslist_leadgen_or_autopilot_are_programs(
    text: str, name: str, params: Params, redirected: str
) -> None:
    intent = parse(text)
    assert intent is not None
    assert (intent.name, intent.params, intent.redirect_from) == (name, params, redirected)


UNKNOWN = [
    "",
    "   ",
    "hola",
    "gracias",
    "¿cómo estás?",
    "¿cuál es la capital de Francia?",
    "cuéntame un chiste",
    "¿qué tal andamos con todo el negocio hoy?",
    "qué hora es",
    "what's the weather in miami",
    "what's the status of my order",
    "estado de la economía",
    "campaign finance reform",
    "prende la luz",
    "turn on the lights",
    "apaga la tele",
    "apaga todas las luces",
    "reinicia el sistema",
    "apaga el sistema",
    "ayuda",
    "help",
    "stop",
    "start",
    "?!¿¡...",
    "x" * 2000,
]
# words it knows, but not enough to act on (which city? which campaign? to whom?) or two commands in one
INCOMPLETE = [
    "prende craigslist",
    "arranca craigslist",
    "activa autos",
    "estado de autos miami",
    "pausa la campaña",
    "no contactes más",
    "¿qué sigue?",
    "what's next for craigslist miami",
    "prende craigslist miami y tampa",
    "prende craigslist miami, no tampa",
    "apaga craigslist miami y prende tampa",
    "apaga todo en miami",
    "prende la campaña autos_outbound_miami y apaga craigslist miami",
    "pausa la campaña autos_outbound_miami y la autos_outbound_tampa",
    "no prendas craigslist miami",
    "no apagues craigslist miami",
    "leads que me mandó juan ayer",
    "muéstrame a ana",
]


@pytest.mark.parametrize("text", UNKNOWN + INCOMPLETE, ids=[t[:40] or "empty" for t in UNKNOWN + INCOMPLETE])
def test_unrelated_or_incomplete_text_matches_no_rule(text: str) -> None:
    assert parse(text) is None


@pytest.mark.parametrize(
    ("text", "confidence"),
    [
        ("prende craigslist miami", 1.0),
        ("prende craigslist en hialeah", 0.9),  # a city it does not know: taken as typed
        ("prende craigslist miami rapidito hoy", 0.8),  # a word it does not know, ignored
        ("prende leadgen en miami", 0.7),  # no source named: Craigslist, the default
        ("pausa las campañas", 0.8),  # plural, no "todas"
        ("+1 305 555 0100", 0.8),  # a phone alone
        ("inspecciona a ana", 0.7),
    ],
)
def test_loose_matches_say_so_in_their_confidence(text: str, confidence: float) -> None:
    intent = parse(text)
    assert intent is not None
    assert intent.confidence == confidence


def test_a_city_it_does_not_know_is_slugged_as_typed() -> None:
    assert parse("prende craigslist en hialeah") == Intent(
        name="craigslist.cto.start",
        params={"program": "craigslist", "city": "hialeah"},
        confidence=0.9,
        matched="craigslist.cto.start:verb+source+city",
    )
    la_paz = parse("prende craigslist en la paz")
    assert la_paz is not None and la_paz.params["city"] == "lapaz"
    default = parse("estado del programa de miami")
    assert default is not None and (default.name, default.params) == ("program.status", CL_MIAMI)


def test_matched_names_the_rule_for_the_audit_log() -> None:
    start = parse("start craigslist miami")
    toggle = parse("pausa la campaña autos_outbound_miami")
    inspect = parse("lead 3f2a")
    assert start is not None and start.matched == "craigslist.cto.start:verb+source+city"
    assert toggle is not None and toggle.matched == "campaign.toggle:verb+campaign+key"
    assert inspect is not None and inspect.matched == "lead.inspect:lead+ref"


def test_parse_is_pure_and_the_intent_frozen() -> None:
    first, second = parse("prende craigslist miami --confirm"), parse("prende craigslist miami --confirm")
    assert first == second and first is not None
    with pytest.raises(AttributeError):
        first.name = "craigslist.cto.stop"  # type: ignore[misc]
    assert msgspec.json.decode(msgspec.json.encode(first), type=Intent) == first


def test_parsing_is_fast() -> None:
    texts = [p[0] for p in PHRASES] + UNKNOWN
    started = time.perf_counter()
    for _ in range(5):
        for text in texts:
            parse(text)
    assert time.perf_counter() - started < 1.0  # about 1,500 phrases


FUZZ_WORDS = [
    "prende", "apaga", "para", "pausa", "activa", "craigslist", "encuentra24", "autos", "campaña",
    "campañas", "todas", "leads", "lead", "miami", "new", "york", "de", "en", "la", "el", "¿", "?", ",",
    "sí", "no", "confírmalo", "estado", "status", "+1", "305", "555", "0100", "ana", "3f2a",
    "autos_outbound_miami", "turn", "on", "off"
]  # fmt: skip


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.lists(
        st.sampled_from(FUZZ_WORDS) | st.text(max_size=8),
        max_size=12,
    )
)
def test_any_text_gives_a_known_intent_or_none_and_never_raises(words: list[str]) -> None:
    intent = parse(" ".join(words))
    assert intent is None or (intent.name in INTENTS and intent.matched and 0.0 < intent.confidence <= 1.0)


# --- normalise, language, help -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("¿Cómo  está el SISTEMA?", "como esta el sistema"),
        ("Campañas ACTIVAS, ahora!", "campanas activas ahora"),
        ("¡Prendé Craigslist en Miami!", "prende craigslist en miami"),
        ("detén; pausá: suprímelo.", "deten pausa suprimelo"),
        ("  Encuentra24\tCosta   Rica \n", "encuentra24 costa rica"),
        ("Ñandú PANAMÁ über", "nandu panama uber"),
        ("+1 (305) 555-0100", "+1 (305) 555-0100"),
        ("", ""),
    ],
)
def test_normalise_folds_case_accents_and_punctuation(text: str, normal: str) -> None:
    assert normalise(text) == normal


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("¿Qué campañas están activas?", "es"),
        ("campañas activas ahora", "es"),
        ("prende craigslist miami", "es"),
        ("estado del sistema", "es"),
        ("no contactes más al +1 305 555 0100", "es"),
        ("muéstrame los leads de hoy", "es"),
        ("which campaigns are running now", "en"),
        ("start craigslist miami", "en"),
        ("turn off craigslist in los angeles", "en"),
        ("show me the new leads from today", "en"),
        ("do not contact +13055550100", "en"),
        ("status", "en"),
        ("", "es"),
        ("craigslist miami", "es"),  # nothing to go on: Spanish
    ],
)
def test_language_is_a_guess_from_the_words(text: str, lang: str) -> None:
    assert language(text) == lang


def test_intents_are_the_specs_each_with_a_description() -> None:
    assert set(INTENTS) == SPEC_INTENTS
    assert all(description.strip() for description in INTENTS.values())
    assert set(EXAMPLES) == SPEC_INTENTS


@pytest.mark.parametrize("name", sorted(SPEC_INTENTS))
def test_help_shows_an_example_of_every_intent_in_both_languages_and_each_parses_to_it(name: str) -> None:
    es, en = EXAMPLES[name]
    assert es in help_text("es") and es in help_text()
    assert en in help_text("en")
    for example in (es, en):
        intent = parse(example)
        assert intent is not None and intent.name == name, example
    assert language(es) == "es" and language(en) == "en"


def test_help_is_in_the_language_asked() -> None:
    assert help_text("es").startswith("Puedes pedir")
    assert help_text("en").startswith("You can ask")
    assert "prende craigslist miami" in help_text("es")
    assert len(help_text("es").splitlines()) == len(INTENTS) + 1
