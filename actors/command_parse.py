"""Command OS, the rule half: what an operator types, in Spanish or English, mapped to an intent.

`parse` is pure and deterministic: no I/O, no clock, no model. It tags the words it knows (verbs for
on and off, campaigns, programs and their sources, autos, leads, cities, filters, politeness) after
`normalise` has folded case and accents, and decides from the tags, not from word order: "prende
craigslist miami", "craigslist miami prende" and "¿puedes prender craigslist en Miami, por favor?"
are the same command. When the tags do not add up to one intent with its required parameters it
returns None, and Command OS asks the model instead.

The spec's rule: `campaign.list` is about outbound campaigns only. A question about the "campaign"
of Craigslist, Encuentra24, LeadGen or the autopilot is about a program: it is answered as
`program.status` / `program.list` (or the program start/stop) with `redirect_from` set.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

import msgspec

__all__ = ["EXAMPLES", "INTENTS", "Intent", "help_text", "language", "normalise", "parse"]


class Intent(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # one of INTENTS
    params: dict[str, str | bool | int] = {}
    confidence: float = 1.0  # rules: 1.0 for exact patterns, lower for loose matches
    matched: str = ""  # which rule matched, for the audit log
    redirect_from: str | None = None  # asked about campaigns, answered about programs


INTENTS: Final[dict[str, str]] = {
    "system.status": "How the system is doing: active campaigns, running programs, leads and touches of the last 24 h.",
    "campaign.list": "List the outbound campaigns; params: active_only (bool), paused_only (bool, optional).",
    "campaign.toggle": "Turn one outbound campaign on or off; params: campaign (key or name), active (bool).",
    "campaign.toggle.bulk": "Pause (or activate) every outbound campaign at once; params: active (bool).",
    "program.list": "List the LeadGen programs (Craigslist, Encuentra24 for a city) and whether they run.",
    "program.status": "Status of one LeadGen program; params: program (craigslist|encuentra24), city (optional).",
    "craigslist.cto.start": (
        "Start a LeadGen program in a city; params: program (craigslist|encuentra24), city (slug), "
        "confirm (bool, start again even if running), override_routing (bool)."
    ),
    "craigslist.cto.stop": "Stop a LeadGen program in a city; params: program (craigslist|encuentra24), city (slug).",
    "autos.activate": "Switch the autos full funnel on for a city; params: city (slug), confirm (bool).",
    "autos.deactivate": "Switch the autos full funnel off for a city; params: city (slug), confirm (bool).",
    "lead.list": (
        "List leads; optional params: status (new|contacted|replied|qualified|suppressed|closed), "
        "source (craigslist|encuentra24), city, limit (int), since (today|yesterday|this_week|this_month|<n>h|<n>d)."
    ),
    "lead.inspect": "Show one lead and its history; params: lead (uuid, E.164 phone, e-mail or name).",
    "lead.next_action": "What comes next for one lead; params: lead (uuid, E.164 phone, e-mail or name).",
    "lead.suppress": "Never contact a lead again; params: lead (uuid, E.164 phone, e-mail or name).",
}

# intent → (what it is in Spanish, in English, an example in Spanish, one in English); every example parses to it
_HELP: Final[dict[str, tuple[str, str, str, str]]] = {
    "system.status": ("Estado del sistema", "System status", "¿cómo va todo?", "system status"),
    "campaign.list": (
        "Campañas outbound",
        "Outbound campaigns",
        "¿qué campañas están activas?",
        "list active campaigns",
    ),
    "campaign.toggle": (
        "Prender o pausar una campaña",
        "Turn one campaign on or off",
        "pausa la campaña autos_outbound_miami",
        "activate campaign autos_outbound_miami",
    ),
    "campaign.toggle.bulk": (
        "Pausar todas las campañas",
        "Pause every campaign",
        "pausa todas las campañas",
        "pause all campaigns",
    ),
    "program.list": ("Programas de LeadGen", "LeadGen programs", "¿qué programas hay?", "list programs"),
    "program.status": (
        "Estado de un programa",
        "How a program is doing",
        "¿cómo va craigslist en miami?",
        "status craigslist miami",
    ),
    "craigslist.cto.start": (
        "Prender un programa en una ciudad",
        "Start a program in a city",
        "prende craigslist miami",
        "start craigslist miami",
    ),
    "craigslist.cto.stop": (
        "Apagar un programa en una ciudad",
        "Stop a program in a city",
        "apaga craigslist miami",
        "stop craigslist miami",
    ),
    "autos.activate": (
        "Activar el embudo de autos de una ciudad",
        "Switch the autos funnel on for a city",
        "activa autos miami",
        "activate autos miami",
    ),
    "autos.deactivate": (
        "Apagar el embudo de autos de una ciudad",
        "Switch the autos funnel off for a city",
        "apaga autos miami",
        "deactivate autos miami",
    ),
    "lead.list": ("Leads", "Leads", "muéstrame los leads nuevos de hoy", "list new leads from today"),
    "lead.inspect": ("Ver un lead", "One lead", "muéstrame el lead +1 305 555 0100", "show lead +13055550100"),
    "lead.next_action": (
        "Qué sigue con un lead",
        "What comes next for a lead",
        "¿qué sigue con el lead +13055550100?",
        "next action for lead +13055550100",
    ),
    "lead.suppress": (
        "No contactar más a un lead",
        "Never contact a lead again",
        "no contactes más al +1 305 555 0100",
        "do not contact +13055550100",
    ),
}
EXAMPLES: Final[dict[str, tuple[str, str]]] = {name: (es, en) for name, (_, _, es, en) in _HELP.items()}

_MAX_CHARS: Final = 400  # a paragraph is the model's job
_MAX_TOKENS: Final = 40

# --- text ------------------------------------------------------------------------------------------

_PUNCT: Final = "¿¡?!.,;:"
_NORMALISE: Final = str.maketrans(dict.fromkeys(_PUNCT, " "))
_CLEAN: Final = str.maketrans(dict.fromkeys(_PUNCT + '"“”«»', " "))  # one char for one: spans stay put
_QUOTES: Final = "'\u2019\u2018`\u00b4"  # apostrophes as phones and keyboards type them
_APOSTROPHES: Final = str.maketrans(dict.fromkeys(_QUOTES))
_EDGES: Final = "()[]{}<>*"
_NAME_EDGES: Final = _EDGES + _QUOTES + " -"


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalise(text: str) -> str:
    """Lower case, accents stripped (NFKD), ¿¡?!.,;: taken out (as spaces), whitespace collapsed."""
    return " ".join(_fold(text).translate(_NORMALISE).split())


# --- the words it knows ------------------------------------------------------------------------------
#
# kinds: fill (politeness, time fillers), stop (articles, prepositions, auxiliaries), q (question words),
# cop (is/está), turn (turn/switch: makes a later on/off a verb), neg, on/off (verbs), weak_on/weak_off
# (on, off, run: verbs in commands, states in questions), para (stop or "for"), activa (verb or adjective),
# state, src, camp, prog, autos, lead, system, status, all, confirm, override, show, inspect, next,
# suppress, lstatus, since, last, unit, num, city

_PHRASES: dict[tuple[str, ...], tuple[str, str]] = {}


def _add(kind: str, value: str, phrases: str) -> None:
    for phrase in phrases.split("|"):
        words = tuple(phrase.split())
        if words and words not in _PHRASES:
            _PHRASES[words] = (kind, value)


# the most specific first: a phrase already known keeps its first meaning
_add("confirm", "", "aunque ya este corriendo|aunque ya esta corriendo|aunque este corriendo|aunque esta corriendo")
_add("confirm", "", "aunque ya este activo|aunque ya este prendido|aunque ya este encendido|aunque ya corra")
_add("confirm", "", "aunque corra|even if running|even if it is running|even if its running|even if already running")
_add("confirm", "", "even if it is already running|even if its already running|even if it's already running")
_add("confirm", "", "--confirm|--force|--yes|confirm|confirmo|confirmado|confirma|confirmalo|confirmala|confirmar")
_add("confirm", "", "confirmed|force|forzar|forzalo|forzala|fuerza|forzado|anyway|anyways|de todas formas")
_add("confirm", "", "de todos modos|de todas maneras|igual|igualmente|yes confirm|si confirmo|im sure|estoy seguro")
_add("confirm", "", "de nuevo|otra vez|again|once more|una vez mas")  # "sí, prende craigslist miami de nuevo"
_add("override", "", "--override-routing|--override|--no-routing|--skip-routing|override routing|routing override")
_add("override", "", "override the routing|sin routing|sin ruteo|sin enrutamiento|ignora el routing|ignora routing")
_add("override", "", "ignorar routing|ignorar el routing|ignorando el routing|ignora el ruteo|ignorar el ruteo")
_add("override", "", "ignore routing|ignore the routing|ignoring routing|skip routing|skip the routing")
_add("override", "", "without routing|bypass routing|bypass the routing|salta el routing|saltate el routing")
_add("override", "", "no routing|aunque no haya routing|even without routing|override")

_add("suppress", "", "no contactes|no contactar|no contacten|no contacte|no lo contactes|no la contactes")
_add("suppress", "", "no le escribas|no escribas|no le escriban|no le mandes|no mandes|no llames|no le llames")
_add("suppress", "", "no lo llames|no la llames|ya no contactes|deja de contactar|dejen de contactar")
_add("suppress", "", "deja de contactarlo|deja de contactarla|deja de escribirle|deja de escribir|stop contacting")
_add("suppress", "", "stop messaging|stop texting|stop calling|do not contact|dont contact|never contact")
_add("suppress", "", "do not call|dont call|do not text|dont text|do not disturb|no molestar|nunca contactes")
_add("suppress", "", "suprime|suprimir|suprimelo|suprimela|suppress|da de baja|dale de baja|dar de baja")
_add("suppress", "", "dalo de baja|dala de baja|den de baja|unsubscribe|opt out|optout|blacklist|lista negra")
_add("suppress", "", "bloquea|bloquear|bloquealo|bloqueala|block|dnc|no llamar")

_add("next", "", "que sigue|que sigue con|que sigue para|que toca|que le toca|que toca con|que hago con")
_add("next", "", "que hacemos con|que hay que hacer con|que debo hacer con|que deberia hacer con|siguiente paso")
_add("next", "", "siguiente accion|siguientes pasos|proximo paso|proxima accion|proximos pasos|accion siguiente")
_add("next", "", "paso siguiente|next action|next step|next steps|next best action|whats next|what next")
_add("next", "", "what should i do with|what do i do with|what do we do with|what to do with|what now with")

_add("fill", "", "como estas|como esta usted|how are you|how are you doing")  # a greeting, not a status question

_add("on", "", "prende|prender|prendan|prenda|prendelo|prendela|prendelos|prendelas|prendeme|prendemelo")
_add("on", "", "enciende|encender|enciendan|encienda|enciendelo|enciendela|enciendelos|enciendeme|encende")
_add("on", "", "activar|activen|activalo|activala|activalos|activalas|activame|activemos|arranca|arrancar")
_add("on", "", "arranquen|arranque|arrancalo|arrancala|arrancame|inicia|iniciar|inicien|inicie|inicialo|iniciala")
_add("on", "", "iniciame|empieza|empezar|empiecen|comienza|comenzar|lanza|lanzar|lanzalo|lanzala|reanuda|reanudar")
_add("on", "", "reanudalo|reanudala|reactiva|reactivar|reactivala|reactivalo|habilita|habilitar|habilitalo")
_add("on", "", "habilitala|pon en marcha|pone en marcha|poner en marcha|ponlo en marcha|ponla en marcha")
_add("on", "", "echa a andar|echalo a andar|ejecuta|ejecutar|levanta|levantar|despausa|despausar|quita la pausa")
_add("on", "", "quitale la pausa|start|start up|startup|turn on|switch on|enable|activate|resume|launch")
_add("on", "", "kick off|fire up|spin up|power on|unpause|begin|go live")
_add(
    "on", "", "prendes|enciendes|arrancas|inicias|lanzas|reanudas|reactivas|habilitas|prenden|encienden"
)  # ¿me prendes…?
_add("off", "", "apaga|apagar|apaguen|apague|apagalo|apagala|apagalos|apagalas|apagame|apagamelo|deten|detener")
_add("off", "", "detengan|detenga|detenlo|detenla|detenlos|detenlas|detene|parar|paren|pare|paralo|parala")
_add("off", "", "paralos|paralas|pausa|pausar|pausen|pause|pausalo|pausala|pausalos|pausalas|pon en pausa")
_add("off", "", "ponlo en pausa|ponla en pausa|poner en pausa|desactiva|desactivar|desactiven|desactive")
_add("off", "", "desactivalo|desactivala|desactivalos|desactivalas|suspende|suspender|suspendelo|suspendela")
_add("off", "", "frena|frenar|frenalo|frenala|corta|cortar|cortalo|deshabilita|deshabilitar|cancela|cancelar")
_add("off", "", "stop|turn off|switch off|shut down|shutdown|shut off|disable|deactivate|halt|kill|suspend")
_add("off", "", "power off|pause it|stop it")
_add("off", "", "apagas|detienes|desactivas|suspendes|frenas|deshabilitas|cancelas|apagan|detienen|pausan")
_add("para", "", "para")
_add("activa", "", "activa")
_add("weak_on", "", "on|run")
_add("weak_off", "", "off")
_add("turn", "", "turn|switch|put|pon|ponme|poner|ponlo|ponla")

_add("state", "active", "activas|activos|activo|active|prendidas|prendidos|prendida|prendido|encendidas")
_add("state", "active", "encendidos|encendida|encendido|corriendo|running|en marcha|en curso|funcionando|andando")
_add("state", "active", "live|enabled|vivas|vigentes|in progress|ongoing|turned on|switched on|habilitadas")
_add("state", "active", "habilitados|habilitada|habilitado|en ejecucion|ejecutandose|activadas|activados")
_add("state", "active", "activada|activado|activated|started|iniciadas|iniciados|arrancadas|up|up and running")
_add("state", "paused", "pausadas|pausados|pausada|pausado|paused|en pausa|on pause|on hold|apagadas|apagados")
_add("state", "paused", "apagada|apagado|detenidas|detenidos|detenida|detenido|paradas|parados|parada|parado")
_add("state", "paused", "inactivas|inactivos|inactiva|inactivo|inactive|disabled|stopped|turned off|switched off")
_add("state", "paused", "desactivadas|desactivados|desactivada|desactivado|deactivated|suspendidas|suspendidos")
_add("state", "paused", "suspended|down")

_add("src", "craigslist", "craigslist|craiglist|craigslit|cragslist|craiglis|craigs list|craig list|craigslists")
_add("src", "craigslist", "craigs|cl|craigslist org|craigslistorg")
_add("src", "encuentra24", "encuentra24|encuentra 24|e24|encuentra24 com|encuentra 24 com")

_add("camp", "one", "campana|campania|campaign|campain|campaing")
_add("camp", "many", "campanas|campanias|campaigns|campains|campaings")
_add("camp", "outbound", "outbound|out bound")
_add("prog", "one", "programa|program")
_add("prog", "many", "programas|programs|leadgen|lead gen|lead generation|generacion de leads")
_add("prog", "many", "generacion de prospectos|autopilot|auto pilot|piloto automatico|autopiloto|fuentes de leads")
_add("prog", "many", "fuentes de prospectos|fuente de leads|fuentes|fuente|lead sources|lead source|sources")
_add("prog", "many", "source|scraper|scrapers|scraping|crawler|crawlers|crawl|crawling|rastreo|rastreadores")
_add("autos", "funnel", "embudo de autos|embudo|embudo completo|funnel|full funnel|funnel completo")
_add("autos", "funnel", "autos funnel|autos full funnel|funnel de autos")
_add("autos", "autos", "autos|auto")
_add("lead", "one", "lead|prospecto|prospect|cliente potencial")
_add("lead", "many", "leads|prospectos|prospects|clientes potenciales|contactos")

_add("system", "", "sistema|system|plataforma|platform|servidor|server|servidores|servers|touchline|sistemas")
_add("system", "", "systems|servicios|services|health check|healthcheck")
_add("status", "", "estado|estados|status|estatus|stats|situacion|como va|como van|como vamos|como anda")
_add("status", "", "como andan|como esta|como estan|como sigue|como siguen|que tal|que tal va|que tal todo")
_add("status", "", "how is|how are|hows|how is it going|how are things|how is everything|hows everything")
_add("status", "", "hows it going|how goes|health|salud|resumen|overview|report|reporte|informe|todo bien")
_add("status", "", "all good|everything ok|everything okay|is everything ok|any issues|algun problema")
_add("status", "", "problemas|issues|novedades|whats up|que hay de nuevo")
_add("all", "", "todo lo que|todo lo que este|todas|todos|todo|all|everything|every|everything that")
_add("all", "", "all of them|todas ellas|lo que sea")

_add("show", "", "lista|listar|listame|listado|list|show|show me|muestra|muestrame|mostrar|mostrame|ensename")
_add("show", "", "ver|quiero ver|dame|give|give me|trae|traeme|tell me|dime|decime|cuentame|consulta")
_add("show", "", "consultar|check|revisa|revisar|busca|buscar|buscame|find|look up|lookup|enumera|see|display")
_add("show", "", "view|pull up|saca|sacame")
_add("inspect", "", "inspecciona|inspeccionar|inspeccioname|inspect|detalle|detalles|details|detail|info")
_add("inspect", "", "informacion|information|ficha|perfil|profile|quien es|who is|whos|abre|abrir|open")
_add("inspect", "", "examina|examinar|historial|history|todo sobre|everything about")

_add("lstatus", "new", "nuevo|nuevos|nueva|nuevas|new|fresh|frescos|frescas|sin contactar|uncontacted")
_add("lstatus", "new", "not contacted|no contactados")
_add("lstatus", "contacted", "contactado|contactados|contactada|contactadas|contacted|ya contactados")
_add("lstatus", "replied", "respondido|respondidos|respondida|respondidas|replied|respondieron|que respondieron")
_add("lstatus", "replied", "con respuesta|answered|responded|contestaron|que contestaron")
_add("lstatus", "qualified", "calificado|calificados|calificada|calificadas|qualified|cualificados|cualificado")
_add("lstatus", "suppressed", "suprimidos|suprimido|suprimidas|suprimida|suppressed|dados de baja|dado de baja")
_add("lstatus", "suppressed", "de baja|bloqueados|blocked|opted out")
_add("lstatus", "closed", "cerrado|cerrados|cerrada|cerradas|closed")
_add("since", "today", "hoy|today|de hoy|todays|del dia|this day|hoy dia")
_add("since", "yesterday", "ayer|yesterday|de ayer")
_add("since", "this_week", "esta semana|this week|semana|de la semana")
_add("since", "this_month", "este mes|this month|del mes")
_add("since", "7d", "ultima semana|last week|semana pasada|la semana pasada|past week|ultimos siete dias")
_add("since", "7d", "last seven days")
_add("since", "30d", "ultimo mes|last month|mes pasado|past month")
_add("last", "", "ultimos|ultimas|ultimo|ultima|last|latest|recientes|reciente|recent|top|primeros|primeras")
_add("last", "", "first|mas recientes|mas nuevos|mas nuevas|newest|most recent")
_add("unit", "h", "horas|hora|hours|hour|hrs|h")
_add("unit", "d", "dias|dia|days|day|d")
for _word, _n in {
    "dos": 2, "two": 2, "tres": 3, "three": 3, "cinco": 5, "five": 5, "diez": 10, "ten": 10, "quince": 15,
    "fifteen": 15, "veinte": 20, "twenty": 20, "treinta": 30, "thirty": 30, "cincuenta": 50, "fifty": 50,
    "cien": 100, "hundred": 100,
}.items():  # fmt: skip
    _add("num", str(_n), _word)

_CITIES: Final = (
    "miami|tampa|orlando|jacksonville|tallahassee|gainesville|sarasota|naples|pensacola|daytona|ocala|lakeland|"
    "fort myers|fort lauderdale|west palm beach|palm beach|boca raton|houston|dallas|austin|san antonio|el paso|"
    "fort worth|mcallen|laredo|brownsville|corpus christi|los angeles|san diego|san francisco|san jose|sacramento|"
    "fresno|bakersfield|long beach|new york|brooklyn|chicago|atlanta|phoenix|tucson|las vegas|seattle|portland|"
    "denver|boston|philadelphia|detroit|charlotte|raleigh|nashville|memphis|new orleans|baltimore|washington|"
    "richmond|cleveland|columbus|cincinnati|pittsburgh|indianapolis|minneapolis|milwaukee|kansas city|st louis|"
    "salt lake city|albuquerque|oklahoma city|louisville|newark|hartford|providence|buffalo|"
    "costa rica|panama|guatemala|el salvador|honduras|nicaragua"
)
for _city in _CITIES.split("|"):
    _add("city", _city, _city)
for _alias, _city in {
    "nueva york": "new york", "nyc": "new york", "ny": "new york", "nueva orleans": "new orleans",
    "ft lauderdale": "fort lauderdale", "ft myers": "fort myers", "ft worth": "fort worth",
    "saint louis": "st louis", "san luis": "st louis", "filadelfia": "philadelphia", "vegas": "las vegas",
}.items():  # fmt: skip
    _add("city", _city, _alias)

_add("q", "", "que|cual|cuales|cuantos|cuantas|cuanto|cuanta|donde|cuando|quien|quienes|which|what|whats")
_add("q", "", "how many|how much|who|where|when|do|does|did|any|hay|como|how|why|por que|porque")
_add("cop", "", "esta|estan|este|esten|es|son|is|are|was|were|sigue|siguen|queda|quedan|quedo|isnt|arent")
_add("neg", "", "no|not|dont|never|nunca|ni")
_add("fill", "", "por favor|porfa|porfavor|porfis|plis|pls|plz|please|oye|oiga|hey|hi|hello|hola|buenas")
_add("fill", "", "buenos dias|buenas tardes|buenas noches|ok|okay|okey|vale|bueno|ahora|ahorita|ahora mismo|ya")
_add("fill", "", "now|right now|asap|de inmediato|inmediatamente|rapido|quick|quickly|gracias|thanks|thank you")
_add("fill", "", "thx|si|yes|yeah|yep|puedes|podrias|puede|podria|can you|could you|would you|will you|quiero")
_add("fill", "", "quisiera|necesito|i want|i want to|i would like to|id like to|i need|i need to|want|need|lets")
_add("fill", "", "let us|mas|more|mismo|just|solo|solamente|only|general|actual|actuales|current|currently")
_add("fill", "", "actualmente|en este momento|at the moment|amigo|bro|dale|venga|go ahead|go|favor|a ver")
_add("fill", "", "let me see|jefe|boss|bot|mira|hazme el favor de|me haces el favor de|quiero saber")
_add("fill", "", "i want to know|sabes|do you know|also|tambien")
_add("stop", "", "el|la|los|las|lo|le|les|un|una|unos|unas|the|a|an|de|del|en|in|at|into|for|of|to|al|con")
_add("stop", "", "with|por|y|e|and|o|or|u|from|desde|sobre|about|me|mi|mis|my|our|nuestro|nuestra|nuestros")
_add("stop", "", "nuestras|nos|we|us|i|you|tu|tus|your|usted|se|it|its|them|they|this|that|these|those|ese")
_add("stop", "", "esa|eso|esos|esas|estos|estas|aqui|here|alli|called|named|llamada|llamado|que se llama")
_add("stop", "", "con nombre|going|doing|ciudad|city|area|zona|region|mercado|market|pais|country|can|could")
_add("stop", "", "would|will|should|have|has|had|tenemos|tengo|tienes|tiene|existen|existe|there|get|got")
_add("stop", "", "algun|alguna|algunos|algunas|some|va|van|ir|estar|be|been|being|com|www")

_MAX_PHRASE: Final = max(len(words) for words in _PHRASES)

_ARTICLES: Final = frozenset({"el", "la", "los", "las"})
_NOISE: Final = frozenset({"fill", "stop", "q", "cop", "turn"})
_SUBJECTS: Final = frozenset({"camp", "key", "src", "prog", "autos", "lead", "phone", "uuid", "email"})
_IDS: Final = ("phone", "uuid", "email")

_EMAIL: Final = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PHONEISH: Final = re.compile(r"[+(]*\d[\d()\-]*")
_KEY: Final = re.compile(r"[a-z0-9]+(?:[_.-][a-z0-9]+)*")
_HEX_ID: Final = re.compile(r"(?=[0-9a-f-]*\d)(?=[0-9a-f-]*[a-f])[0-9a-f]{4,}(?:-[0-9a-f]+)*")


# --- tokens ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Tok:
    start: int  # span in the text as typed
    end: int
    norm: str
    kind: str = ""  # "" for a word it does not know
    value: str = ""


def _e164(digits: str, plus: bool) -> str:
    if plus:
        return "+" + digits
    if digits.startswith("00") and len(digits) > 9:
        return "+" + digits[2:]
    if len(digits) == 10:
        return "+1" + digits  # a US number without its country code
    if len(digits) == 11 and digits.startswith("1"):
        return "+" + digits
    return digits  # a local number of somewhere else: as typed


def _split(text: str) -> list[_Tok]:
    """Words with their spans; e-mails, uuids, campaign keys and --flags kept whole; phones merged."""
    toks: list[_Tok] = []
    chars = list(text)
    for m in _EMAIL.finditer(text):
        email = m.group().lower()
        toks.append(_Tok(m.start(), m.end(), email, "email", email))
        chars[m.start() : m.end()] = " " * (m.end() - m.start())
    cleaned = "".join(chars).translate(_CLEAN)
    for m in re.finditer(r"\S+", cleaned):
        chunk, at = m.group(), m.start()
        low = _fold(chunk).translate(_APOSTROPHES)
        if _PHONEISH.fullmatch(low):
            toks.append(_Tok(at, m.end(), low))
            continue
        whole = low.startswith("-") or "_" in low or _UUID.fullmatch(low.strip(_EDGES)) is not None
        pieces = [(at, chunk)] if whole else [(at + p.start(), p.group()) for p in re.finditer(r"[^-/]+", chunk)]
        for start, piece in pieces:
            norm = _fold(piece).translate(_APOSTROPHES).strip(_EDGES)
            if not norm.strip("-"):
                continue  # a dash between words
            tok = _Tok(start, start + len(piece), norm)
            if _UUID.fullmatch(norm):
                tok.kind, tok.value = "uuid", norm
            elif "_" in norm and _KEY.fullmatch(norm):
                tok.kind, tok.value = "key", norm
            toks.append(tok)
    toks.sort(key=lambda t: t.start)
    return _merge_phones(toks)


def _merge_phones(toks: list[_Tok]) -> list[_Tok]:
    out: list[_Tok] = []
    i = 0
    while i < len(toks):
        j = i
        while j < len(toks) and not toks[j].kind and _PHONEISH.fullmatch(toks[j].norm):
            j += 1
        if j > i:
            joined = "".join(t.norm for t in toks[i:j])
            digits = re.sub(r"\D", "", joined)
            if len(digits) >= 7:
                phone = _e164(digits, joined.lstrip("(").startswith("+"))
                out.append(_Tok(toks[i].start, toks[j - 1].end, joined, "phone", phone))
            else:
                out.extend(toks[i:j])
            i = j
            continue
        out.append(toks[i])
        i += 1
    return out


def _tag(toks: list[_Tok]) -> list[_Tok]:
    """Longest known phrase first at every position; what is left keeps kind ""."""
    out: list[_Tok] = []
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok.kind:
            out.append(tok)
            i += 1
            continue
        for n in range(min(_MAX_PHRASE, len(toks) - i), 0, -1):
            window = toks[i : i + n]
            if any(t.kind for t in window):
                continue
            hit = _PHRASES.get(tuple(t.norm for t in window))
            if hit is not None:
                kind, value = hit
                out.append(_Tok(window[0].start, window[-1].end, " ".join(t.norm for t in window), kind, value))
                i += n
                break
        else:
            if tok.norm.isdigit():
                tok.kind, tok.value = "num", tok.norm.lstrip("0") or "0"
            out.append(tok)
            i += 1
    return out


# --- what the tags say ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Ctx:
    text: str
    toks: list[_Tok]
    question: bool = False
    direction: str = ""  # "", "on", "off" or "conflict"

    def has(self, *kinds: str) -> bool:
        return any(t.kind in kinds for t in self.toks)

    def of(self, kind: str) -> list[_Tok]:
        return [t for t in self.toks if t.kind == kind]

    def values(self, kind: str) -> list[str]:
        return list(dict.fromkeys(t.value for t in self.toks if t.kind == kind))

    def index(self, kind: str) -> int:
        return next((i for i, t in enumerate(self.toks) if t.kind == kind), -1)

    def leftover(self) -> list[_Tok]:
        return [t for t in self.toks if not t.kind]

    def ids(self) -> list[_Tok]:
        return [t for t in self.toks if t.kind in _IDS]

    def raw(self, first: _Tok, last: _Tok) -> str:
        return self.text[first.start : last.end].strip(_NAME_EDGES)


def _significant(toks: list[_Tok]) -> list[int]:
    return [i for i, t in enumerate(toks) if t.kind != "fill"]


def _resolve(ctx: _Ctx) -> None:
    """The words whose meaning depends on their neighbours: activa, para, on/off/run; then the direction."""
    toks = ctx.toks
    sig = _significant(toks)
    first = toks[sig[0]] if sig else None
    ctx.question = "?" in ctx.text or "¿" in ctx.text or (first is not None and first.kind in ("q", "cop"))
    for n, i in enumerate(sig):
        if toks[i].kind == "activa":  # "activa la campaña" (a verb), "campaña activa", "está activa" (a state)
            prev = toks[sig[n - 1]] if n > 0 else None
            if prev is not None and prev.kind in ("cop", "camp", "prog", "key"):
                toks[i].kind, toks[i].value = "state", "active"
            else:
                toks[i].kind = "on"
    strong = any(t.kind in ("on", "off") for t in toks)
    for n, i in enumerate(sig):
        if toks[i].kind != "para":
            continue
        after = toks[sig[n + 1]] if n + 1 < len(sig) else None
        verb = (
            not strong
            and not ctx.question
            and not ctx.has("status")
            and (n == 0 or n == len(sig) - 1)
            and (after is None or after.kind not in ("lead", *_IDS))
        )
        toks[i].kind = "off" if verb else "stop"  # "para craigslist miami" / "arranca craigslist para tampa"
    strong = any(t.kind in ("on", "off") for t in toks)
    turn = ctx.has("turn")
    if turn and not strong and not ctx.question:  # "pon craigslist miami en pausa", "put it on hold"
        for tok in toks:
            if tok.kind == "state":
                tok.kind = "on" if tok.value == "active" else "off"
        strong = any(t.kind in ("on", "off") for t in toks)
    for tok in toks:
        if tok.kind in ("weak_on", "weak_off"):
            on = tok.kind == "weak_on"
            if strong:
                tok.kind = "stop"
            elif ctx.question and not turn:
                tok.kind, tok.value = "state", "active" if on else "paused"
            else:
                tok.kind = "on" if on else "off"
    directions = {t.kind for t in toks if t.kind in ("on", "off")}
    ctx.direction = "conflict" if len(directions) > 1 else directions.pop() if directions else ""


def _place(ctx: _Ctx, source: str) -> tuple[str | None, float] | None:
    """The city (or Encuentra24 country) named, as its site's slug, and how sure; None: two cities or junk."""
    known = ctx.values("city")
    if len(known) > 1:
        return None
    left = ctx.leftover()
    if known:
        words = known[0].split()
        conf = 1.0 if not left else 0.8
        if len(left) > 2:
            return None
    else:
        runs: list[list[_Tok]] = []
        prev_kind = "-"
        for i, tok in enumerate(ctx.toks):
            if not tok.kind and tok.norm.isalpha():
                if prev_kind == "" and runs:
                    runs[-1].append(tok)
                else:  # "en la paz": the article is part of the name
                    article = i > 1 and ctx.toks[i - 1].norm in _ARTICLES and ctx.toks[i - 2].kind in ("stop", "src")
                    runs.append([ctx.toks[i - 1], tok] if article else [tok])
            elif not tok.kind:
                return None  # digits and symbols are no city
            prev_kind = tok.kind
        if not runs:
            return None, 1.0
        if len(runs) > 1 or len(runs[0]) > 3:
            return None
        words = [t.norm for t in runs[0]]
        conf = 0.9
    return ("-" if source == "encuentra24" else "").join(words), conf


def _name_run(ctx: _Ctx, after: int) -> tuple[_Tok, _Tok] | None:
    """The first run of unknown words after position `after` (stop words allowed inside: "María de la Cruz")."""
    toks = ctx.toks
    start = next((i for i in range(after + 1, len(toks)) if not toks[i].kind), -1)
    if start < 0:
        return None
    end = start
    for i in range(start + 1, len(toks)):
        if not toks[i].kind:
            end = i
        elif toks[i].kind not in ("stop", "fill"):
            break
    return toks[start], toks[end]


def _lead_target(ctx: _Ctx, anchor: int) -> tuple[str, str] | None:
    """The lead named, and how: "id" (uuid, phone, e-mail), "ref" (a uuid's first hex digits) or "name"."""
    ids = ctx.ids()
    if ids:
        return ids[0].value, "id"
    run = _name_run(ctx, anchor)
    if run is None:
        return None
    name = ctx.raw(*run)
    if _HEX_ID.fullmatch(name.lower()):
        return name.lower(), "ref"
    return (name, "name") if name else None


def _flags(ctx: _Ctx, *, routing: bool = False) -> dict[str, str | bool | int]:
    out: dict[str, str | bool | int] = {}
    if ctx.has("confirm"):
        out["confirm"] = True
    if routing and ctx.has("override"):
        out["override_routing"] = True
    return out


# --- the rules ---------------------------------------------------------------------------------------

_REFUSED: Final = Intent(name="", matched="refused")  # the rule owns the text but cannot complete it


def _suppress(ctx: _Ctx) -> Intent | None:
    if not ctx.has("suppress"):
        return None
    leadish = ctx.has("lead") or bool(ctx.ids())
    if not leadish and ctx.has("camp", "key", "src", "prog", "autos"):
        for tok in ctx.of("suppress"):  # "da de baja la campaña X": an off verb
            tok.kind = "off"
        ctx.direction = "conflict" if ctx.direction == "on" else "off"
        return None
    anchor = ctx.index("lead") if ctx.has("lead") else ctx.index("suppress")
    target = _lead_target(ctx, anchor)
    if target is None:
        return _REFUSED  # "no contactes más": to whom?
    lead, how = target
    return Intent(
        name="lead.suppress",
        params={"lead": lead, **_flags(ctx)},
        confidence=1.0 if leadish else 0.9,
        matched="lead.suppress:verb+" + ("lead+" if ctx.has("lead") else "") + how,
    )


def _next_action(ctx: _Ctx) -> Intent | None:
    if not ctx.has("next"):
        return None
    leadish = ctx.has("lead") or bool(ctx.ids())
    if not leadish and ctx.has("camp", "key", "src", "prog", "autos"):
        return _REFUSED
    anchor = ctx.index("lead") if ctx.has("lead") else ctx.index("next")
    target = _lead_target(ctx, anchor)
    if target is None:
        return _REFUSED  # "¿qué sigue?": with what?
    lead, how = target
    return Intent(
        name="lead.next_action",
        params={"lead": lead},
        confidence=1.0 if leadish else 0.8,
        matched="lead.next_action:next+" + ("lead+" if ctx.has("lead") else "") + how,
    )


def _lead_filters(ctx: _Ctx) -> dict[str, str | bool | int]:
    params: dict[str, str | bool | int] = {}
    if statuses := ctx.values("lstatus"):
        params["status"] = statuses[0]
    sources = ctx.values("src")
    if sources:
        params["source"] = sources[0]
    if cities := ctx.values("city"):
        params["city"] = ("-" if sources[:1] == ["encuentra24"] else "").join(cities[0].split())
    if since := ctx.values("since"):
        params["since"] = since[0]
    toks = ctx.toks
    for i, tok in enumerate(toks):
        if tok.kind != "num":
            continue
        unit = toks[i + 1] if i + 1 < len(toks) and toks[i + 1].kind == "unit" else None
        if unit is not None:
            params["since"] = f"{tok.value}{unit.value}"  # últimas 24 horas → 24h
        elif "limit" not in params and 0 < int(tok.value) <= 1000:
            params["limit"] = int(tok.value)
    if "limit" not in params and ctx.has("last") and ctx.values("lead") == ["one"]:
        params["limit"] = 1  # "el último lead"
    return params


def _lead(ctx: _Ctx) -> Intent | None:
    ids = ctx.ids()
    lead_words = ctx.of("lead")
    inspect_name = ctx.has("inspect") and not ctx.has(*_SUBJECTS) and _name_run(ctx, ctx.index("inspect"))
    if not ids and not lead_words and not inspect_name:
        return None
    if ctx.direction or ctx.has("camp", "key"):
        return _REFUSED  # "apaga craigslist y muéstrame los leads": two things, the model's
    if ids:
        sure = bool(lead_words) or ctx.has("show", "inspect")
        return Intent(
            name="lead.inspect",
            params={"lead": ids[0].value},
            confidence=1.0 if sure else 0.8,
            matched="lead.inspect:" + ("lead+id" if sure else "id"),
        )
    if not lead_words:
        target = _lead_target(ctx, ctx.index("inspect"))
        if target is None:
            return _REFUSED
        return Intent(
            name="lead.inspect", params={"lead": target[0]}, confidence=0.7, matched=f"lead.inspect:inspect+{target[1]}"
        )
    word = lead_words[0]
    at = ctx.toks.index(word)
    if word.value == "one" and (target := _lead_target(ctx, at)) is not None:
        return Intent(name="lead.inspect", params={"lead": target[0]}, matched=f"lead.inspect:lead+{target[1]}")
    left = ctx.leftover()
    if len(left) > 1:
        return _REFUSED  # "leads que me mandó juan ayer": a filter it does not know
    params = _lead_filters(ctx)
    rule = "+".join(k for k in ("status", "source", "city", "limit", "since") if k in params) or "leads"
    return Intent(name="lead.list", params=params, confidence=1.0 if not left else 0.8, matched=f"lead.list:{rule}")


def _program_action(ctx: _Ctx, program: str, city: str, conf: float, rule: str, redirect: str | None) -> Intent:
    name = "craigslist.cto.start" if ctx.direction == "on" else "craigslist.cto.stop"
    return Intent(
        name=name,
        params={"program": program, "city": city, **_flags(ctx, routing=ctx.direction == "on")},
        confidence=conf,
        matched=f"{name}:{rule}",
        redirect_from=redirect,
    )


def _campaign(ctx: _Ctx) -> Intent | None:
    keys = ctx.of("key")
    camps = ctx.of("camp")
    if not keys and not camps:
        return None
    if ctx.direction == "conflict" or (ctx.direction and ctx.has("neg")):
        return _REFUSED
    if len({k.value for k in keys}) > 1:
        return _REFUSED  # two campaigns in one command: the model can split it
    sources = ctx.values("src")
    if not keys and (sources or ctx.has("prog")):
        return _campaign_about_programs(ctx, sources)
    if ctx.direction:
        active = ctx.direction == "on"
        if ctx.has("all") and not keys:
            return Intent(
                name="campaign.toggle.bulk",
                params={"active": active, **_flags(ctx)},
                matched="campaign.toggle.bulk:verb+all+campaigns",
            )
        name = keys[0].value if keys else _campaign_name(ctx)
        if name:
            return Intent(
                name="campaign.toggle",
                params={"campaign": name, "active": active, **_flags(ctx)},
                matched="campaign.toggle:verb+campaign+" + ("key" if keys else "name"),
            )
        if any(t.value in ("many", "outbound") for t in camps):
            return Intent(
                name="campaign.toggle.bulk",
                params={"active": active, **_flags(ctx)},
                confidence=0.8,
                matched="campaign.toggle.bulk:verb+campaigns",
            )
        return _REFUSED  # "prende la campaña": which one?
    states = ctx.values("state")
    negated = ctx.has("neg")
    paused = "paused" in states or ("active" in states and negated)
    active_only = "active" in states and not paused
    params: dict[str, str | bool | int] = {"active_only": active_only}
    if paused:
        params["paused_only"] = True
    left = ctx.leftover()
    if len(left) > 1:
        return _REFUSED  # "campaign finance reform"
    confidence = 0.7 if keys else 1.0 if not left else 0.8
    rule = "campaigns+" + ("paused" if paused else "active" if active_only else "all")
    return Intent(name="campaign.list", params=params, confidence=confidence, matched=f"campaign.list:{rule}")


def _campaign_about_programs(ctx: _Ctx, sources: list[str]) -> Intent:
    """The spec's rule: "campañas de craigslist", "autopilot campaigns" are programs."""
    if len(sources) > 1:
        return _REFUSED
    program = sources[0] if sources else "craigslist"
    place = _place(ctx, program)
    if place is None:
        return _REFUSED
    city, conf = place
    if not sources:
        conf = min(conf, 0.7)
    if ctx.direction:
        if city is None:
            return _REFUSED
        return _program_action(ctx, program, city, conf, "verb+campaign+source+city", "campaign.toggle")
    if not sources and city is None:
        return Intent(name="program.list", matched="program.list:campaigns+programs", redirect_from="campaign.list")
    params: dict[str, str | bool | int] = {"program": program}
    if city is not None:
        params["city"] = city
    return Intent(
        name="program.status",
        params=params,
        confidence=conf,
        matched="program.status:campaigns+" + ("source" if sources else "programs") + ("+city" if city else ""),
        redirect_from="campaign.list",
    )


_NAME_SKIP: Final = _NOISE | {"on", "off", "state", "confirm", "override", "camp", "show", "neg", "since"}


def _campaign_name(ctx: _Ctx) -> str | None:
    """The name after the (last) campaign word, or between the verb and it ("turn off the Autos Miami campaign")."""
    toks = ctx.toks
    anchor = max(i for i, t in enumerate(toks) if t.kind == "camp")
    for lo, hi in ((anchor + 1, len(toks)), (_after_verb(toks, anchor), anchor)):
        span = toks[lo:hi]
        while span and span[0].kind in _NAME_SKIP:
            span = span[1:]
        while span and span[-1].kind in _NAME_SKIP:
            span = span[:-1]
        if span and len(span) <= 6:
            return ctx.raw(span[0], span[-1]) or None
    return None


def _after_verb(toks: list[_Tok], before: int) -> int:
    verbs = [i for i in range(before) if toks[i].kind in ("on", "off", "turn")]
    return verbs[-1] + 1 if verbs else 0


def _negated_action(ctx: _Ctx) -> bool:
    """A "no" with a verb, or with a word it does not know (a verb form it lacks: "no apagues")."""
    return ctx.has("neg") and (bool(ctx.direction) or bool(ctx.leftover()))


def _source(ctx: _Ctx) -> Intent | None:
    sources = ctx.values("src")
    if not sources:
        return None
    if ctx.values("autos") == ["funnel"] and ctx.direction:
        return None  # "prende el embudo de autos con craigslist en miami": the autos funnel
    if len(sources) > 1 or ctx.direction == "conflict" or _negated_action(ctx):
        return _REFUSED  # "no prendas craigslist miami" is not a status question
    program = sources[0]
    place = _place(ctx, program)
    if place is None:
        return _REFUSED
    city, conf = place
    if ctx.direction:
        if city is None:
            return _REFUSED  # "prende craigslist": which city?
        return _program_action(ctx, program, city, conf, "verb+source+city", None)
    params: dict[str, str | bool | int] = {"program": program}
    if city is not None:
        params["city"] = city
    return Intent(
        name="program.status",
        params=params,
        confidence=conf,
        matched="program.status:source" + ("+city" if city else ""),
    )


def _autos(ctx: _Ctx) -> Intent | None:
    if not ctx.has("autos"):
        return None
    if ctx.direction in ("", "conflict") or ctx.has("neg"):
        return _REFUSED  # no autos status intent; the model can say what it knows
    place = _place(ctx, "craigslist")
    if place is None:
        return _REFUSED
    city, conf = place
    if city is None:
        return _REFUSED  # "activa autos": which city?
    name = "autos.activate" if ctx.direction == "on" else "autos.deactivate"
    return Intent(name=name, params={"city": city, **_flags(ctx)}, confidence=conf, matched=f"{name}:verb+autos+city")


def _program_word(ctx: _Ctx) -> Intent | None:
    if not ctx.has("prog"):
        return None
    if ctx.direction == "conflict" or _negated_action(ctx):
        return _REFUSED
    place = _place(ctx, "craigslist")
    if place is None:
        return _REFUSED
    city, conf = place
    if ctx.direction:
        if city is None:
            return _REFUSED
        return _program_action(ctx, "craigslist", city, min(conf, 0.7), "verb+program+city(default source)", None)
    if city is not None:
        return Intent(
            name="program.status",
            params={"program": "craigslist", "city": city},
            confidence=min(conf, 0.7),
            matched="program.status:program+city(default source)",
        )
    return Intent(name="program.list", matched="program.list:programs")


def _bulk(ctx: _Ctx) -> Intent | None:
    if not ctx.has("all") or ctx.direction not in ("on", "off"):
        return None
    if ctx.has("neg") or ctx.leftover() or ctx.has("city", "num"):
        return _REFUSED  # "apaga todo en miami", "apaga todas las luces"
    return Intent(
        name="campaign.toggle.bulk",
        params={"active": ctx.direction == "on", **_flags(ctx)},
        matched="campaign.toggle.bulk:verb+all",
    )


def _system(ctx: _Ctx) -> Intent | None:
    if not ctx.has("status", "system"):
        return None
    if ctx.direction or ctx.leftover() or ctx.has("city", "num", "neg"):
        return _REFUSED  # "estado de la economía", "apaga el sistema"
    return Intent(name="system.status", matched="system.status:" + ("system" if ctx.has("system") else "status"))


_RULES: Final = (_suppress, _next_action, _lead, _campaign, _source, _autos, _program_word, _bulk, _system)


def parse(text: str) -> Intent | None:
    """The intent a rule recognises in `text`, or None when none does (then the model is asked)."""
    if not text or len(text) > _MAX_CHARS:
        return None
    toks = _tag(_split(text))
    if not toks or len(toks) > _MAX_TOKENS or all(t.kind in ("fill", "stop") for t in toks):
        return None
    ctx = _Ctx(text, toks)
    _resolve(ctx)
    for rule in _RULES:
        intent = rule(ctx)
        if intent is _REFUSED:
            return None
        if intent is not None:
            return intent
    return None


# --- help and language ------------------------------------------------------------------------------


def help_text(lang: str = "es") -> str:
    """What can be asked, one example per intent, in Spanish ("es") or English ("en")."""
    english = lang == "en"
    head = "You can ask, for example:" if english else "Puedes pedir, por ejemplo:"
    lines = [
        f"- {what_en}: “{en}”" if english else f"- {what_es}: «{es}»" for what_es, what_en, es, en in _HELP.values()
    ]
    return "\n".join([head, *lines])


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_ES_WORDS: Final = _wordset(
    "el la los las de del que como esta estan campana campanas prende prender apaga apagar por favor para en todo "
    "todas lo y sistema estado programas programa muestrame hoy nuevos sigue proxima accion suprime baja contactes "
    "arranca enciende deten pausa activa desactiva ahora ya oye hola cual cuales hay ultimos embudo inspecciona mas "
    "no al con una un es son inicia pausar detener activar encender iniciar parar dame ver lista mi mis tambien "
    "cuantos donde quien prendidas activas corriendo ayer semana"
)
_EN_WORDS: Final = _wordset(
    "the of in on is are what which how campaign campaigns start stop turn off please now all list show me system "
    "programs program today new next action suppress do not dont contact for running pause activate deactivate "
    "enable disable hey everything latest last from active paused with my our any there whats hows "
    "yesterday week can could would you want need status report health check shut down kill"
)


def language(text: str) -> str:
    """ "es" or "en" for the reply, a guess from the words (a tie, or nothing to go on, is Spanish)."""
    named = ("city", "src", "key", *_IDS)  # "los angeles" says nothing about the operator's language
    words = [w for t in _tag(_split(text)) if t.kind not in named for w in t.norm.split()]
    es = sum(w in _ES_WORDS for w in words) + 2 * any(c in text for c in "¿¡")
    en = sum(w in _EN_WORDS for w in words)
    return "en" if en > es else "es"
