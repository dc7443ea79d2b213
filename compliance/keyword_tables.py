"""The keyword and phrase tables of the consent classifier, as data, per language.

Kept apart from the matching code (compliance/keywords.py) so that the words a station
answers to can be read, reviewed and extended in one place, and so that a change to them is
a reviewable diff of data (bump ``CLASSIFIER_VERSION`` in compliance/keywords.py with it).

A station extends them without code changes: build a ``KeywordTables`` holding only its
additions and pass it as ``classify(text, extra=...)``; ``DEFAULT_TABLES.merged(extra)`` is
what gets matched. Entries are written naturally ("no me envíen"): the matcher normalises
them exactly as it normalises messages (accents, case, letter repeats).

Phrase mini-syntax (compiled to one regular expression per phrase; words are whole words):
  ``word``        that word                 ``word*``   a word starting with it (texts, texting)
  ``[a|b c]``     one of the alternatives (an alternative may be several words)
  ``[a|b]?``      optionally one of them    ``~`` any one word, ``~?`` optionally one,
  ``~~``          up to three words         ``^`` / ``$`` start / end of the message
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

__all__ = ["DEFAULT_TABLES", "ENGLISH", "SPANISH", "KeywordTables", "LanguageTable", "Phrase"]


@dataclass(frozen=True, slots=True)
class Phrase:
    """One phrase in the mini-syntax above, and what a match means."""

    pattern: str
    intent: str = "opt_out"  # "opt_out" | "review"
    whole: bool = False  # must be the whole message (polite filler aside), not just inside it
    scope_all: bool = False  # revokes every scope and purpose ("stop all texts")
    veto: bool = False  # booking context in the same message downgrades the match to review


@dataclass(frozen=True, slots=True)
class LanguageTable:
    """Every word list of one language."""

    language: str
    # Whole-message keywords (docs/compliance.md#twilio-keyword-matching). opt_out words also count
    # when the message is the word plus polite filler ("stop please": an FCC reasonable-person
    # reading, docs/compliance.md#revocation-by-any-reasonable-means).
    opt_out: tuple[str, ...] = ()
    opt_out_all: tuple[str, ...] = ()  # opt-out keywords that revoke every scope (STOPALL)
    # Opt-out keywords that also have an everyday booking meaning ("cancel", "end"): an opt-out
    # only as the bare whole message (as Twilio treats them); with filler or inside a sentence, review.
    opt_out_bare: tuple[str, ...] = ()
    opt_in: tuple[str, ...] = ()  # only ever the bare whole message
    help: tuple[str, ...] = ()
    filler: tuple[str, ...] = ()  # polite words around a keyword: "please", "por favor"
    phrases: tuple[Phrase, ...] = ()  # free-text revocations (and review phrases)
    # "don't unsubscribe me": a revocation word under negation; review (or none in booking talk).
    # A plain string is such a pattern; a Phrase (intent "review") without veto stays review always.
    negations: tuple[str | Phrase, ...] = ()
    # Words that make an opt-out keyword inside a sentence booking talk ("cancel my booking").
    booking_words: tuple[str, ...] = ()
    # Constructions that are booking talk whatever the other words ("stop by", "end of").
    booking_phrases: tuple[str, ...] = ()
    # Single words that, inside a sentence that matched nothing above, ask for a person's look.
    triggers: tuple[str, ...] = ()
    # Words whose misspellings are corrected (edit distance 1, 2 for long words) before matching.
    fuzzy: tuple[str, ...] = ()

    def merged(self, other: LanguageTable) -> LanguageTable:
        """This table with ``other``'s entries appended (same language; duplicates dropped)."""
        if other.language != self.language:
            raise ValueError(f"cannot merge language {other.language!r} into {self.language!r}")
        return LanguageTable(
            language=self.language,
            opt_out=_union(self.opt_out, other.opt_out),
            opt_out_all=_union(self.opt_out_all, other.opt_out_all),
            opt_out_bare=_union(self.opt_out_bare, other.opt_out_bare),
            opt_in=_union(self.opt_in, other.opt_in),
            help=_union(self.help, other.help),
            filler=_union(self.filler, other.filler),
            phrases=_union(self.phrases, other.phrases),
            negations=_union(self.negations, other.negations),
            booking_words=_union(self.booking_words, other.booking_words),
            booking_phrases=_union(self.booking_phrases, other.booking_phrases),
            triggers=_union(self.triggers, other.triggers),
            fuzzy=_union(self.fuzzy, other.fuzzy),
        )


_T = TypeVar("_T")


def _union(a: tuple[_T, ...], b: tuple[_T, ...]) -> tuple[_T, ...]:
    return a + tuple(x for x in b if x not in a)


@dataclass(frozen=True, slots=True)
class KeywordTables:
    """The tables of every language the classifier reads (hashable: compiled once per value)."""

    languages: tuple[LanguageTable, ...]

    def merged(self, other: KeywordTables) -> KeywordTables:
        """These tables extended by ``other`` (a station's additions); languages match by code."""
        mine = {t.language: t for t in self.languages}
        for table in other.languages:
            mine[table.language] = mine[table.language].merged(table) if table.language in mine else table
        return KeywordTables(languages=tuple(mine.values()))


# --- English -------------------------------------------------------------------------------

# What a revocation is about: texts and their kinds.
_TEXTS_CORE = (
    "text*|txt*|msg*|messag*|sms|notification*|alert*|reminder*|promo*|ads|advert*|marketing|spam*|robotext*"
)
_TEXTS = f"[{_TEXTS_CORE}|offers|deals|updates|email*|junk|crap|shit|bs|calls]"
_DETS = (
    "[the|these|those|your|ur|all|all the|all these|all of the|all of these|any|any more|anymore|more|my|this|such]?"
)
_ME = "[me|us|my number|this number|my name|my info|my phone|my phone number|this phone|my contact|my details]"
_LIST = (
    "[your|the|this|ur|that|these|my|all]? [list|lists|texting list|text list|sms list|mailing list|contact list|"
    "marketing list|messaging list|distribution list|contacts|system|database]"
)
_CONTACT = "[text*|txt*|msg*|messag*|contact*|bother*|spam*|harass*|email*|call*|hitting me up|ping*|sms*]"

ENGLISH = LanguageTable(
    language="en",
    # Twilio defaults (REVOKE/OPTOUT since 2025-05-14) and the FCC's "opt out":
    # docs/compliance.md#twilio-keyword-matching.
    opt_out=("stop", "unsubscribe", "quit", "revoke", "optout", "opt out", "unsub", "remove", "dnc", "no more"),
    opt_out_all=("stopall", "stop all", "unsubscribe all", "stop everything", "unsubscribe from all"),
    opt_out_bare=("cancel", "end"),
    opt_in=("start", "yes", "unstop"),
    help=("help", "info"),
    filler=(
        "please", "pls", "plz", "plse", "pleas", "thanks", "thank you", "thankyou", "thx", "ty", "tks",
        "ok", "okay", "k", "just", "hey", "hi", "hello", "yo", "sir", "maam", "already", "now",
        "right now", "asap", "immediately", "again", "seriously", "i said", "i say", "now please", "wtf", "omg",
        "ffs", "dude", "bro", "man", "god", "jesus", "for real", "i mean it", "can you", "could you", "would you",
        "will you", "can u", "you can", "plese", "pleae", "plase", "pleaze", "pleez", "plis", "pliz",
    ),
    phrases=(
        # Scope-all first: "stop all texts" revokes every purpose (docs/compliance.md#revoke-all).
        Phrase(f"[stop|quit|end|cancel|unsubscribe|opt out|discontinue] [me]? [from]? all [of]? {_DETS} {_TEXTS}?",
               scope_all=True),
        Phrase("[stop|unsubscribe|opt out|remove] [me|us]? [from]? everything", scope_all=True),
        Phrase("stopall", scope_all=True),
        # "stop texting me", "quit messaging", "stop calling me".
        Phrase(f"[stop|quit|cease|halt|discontinue] {_CONTACT}"),
        Phrase(f"[stop|quit] [sending|send] [me|us]? ~? {_TEXTS}"),
        Phrase("[stop|quit] [sending|send] [me|us]? [these|this|stuff|things|anything|them|it]? $"),
        Phrase(f"[stop|quit|halt|no more|enough|enough with|stop with|done with] {_DETS} {_TEXTS}"),
        Phrase(f"[cancel|end|pause|block|turn off|disable] {_DETS} [{_TEXTS_CORE}]", veto=True),
        Phrase("no [further|more]? [texts|txts|messages|msgs|text messages|sms|sms messages|notifications|promos|ads|"
               "marketing|spam]", whole=True),
        # "don't text me anymore", "I don't want these texts".
        Phrase(f"[dont|do not|never|pls dont|please dont] [ever]? {_CONTACT} [me|us|this number|my number|here]",
               veto=True),
        Phrase(f"[dont|do not|never|no longer] [want|need|wish|wanna|care for|like] [to]? [receive|get|see]? {_DETS} "
               f"{_TEXTS}", veto=True),
        Phrase("[dont|do not|no longer] [want|wanna|wish] [to]? [be texted|be contacted|be messaged|hear from you]"),
        # Lists, numbers, subscriptions.
        Phrase(f"[remove|delete|erase] {_ME}", veto=True),
        Phrase(f"[take|drop|scratch|cross] {_ME} [off|from|out] [this|it|that|here|of this|of it]? $"),
        Phrase(f"[take|drop|scratch|cross] {_ME} [off|from|out] [of]? {_LIST}"),
        Phrase(f"[want|get me|put me|i am|im] [off|out of] {_LIST}"),
        Phrase("[be|get|been|being|im|i am|am] [removed|taken off|deleted|unsubscribed|opted out|dropped]", veto=True),
        Phrase(f"[removed|remove|taken|take|dropped|drop|deleted|delete] [me|us|my number]? [from|off] {_LIST}",
               veto=True),
        Phrase(f"[stop|quit] [getting|receiving|recieving] {_DETS} {_TEXTS}"),
        Phrase("[stop|quit] [receiving|recieving]"),
        Phrase(f"[dont|do not|never|please dont|pls dont] [send|sending] [me|us]? {_DETS} {_TEXTS}"),
        Phrase("[dont|do not|no longer] [want|wish|need] to receive"),
        Phrase("[dont|do not|no longer] [want|wish|need] to get [these|them|those|any more|anymore|more of these]"),
        Phrase("[lose|forget|delete] [my|this] [number|phone number|contact]"),
        Phrase("unsubscrib*"),
        Phrase("unsub"),
        Phrase("[opt|opting|opted] [me|us|this number|my number|this phone|my phone]? out", veto=True),
        Phrase("optout*"),
        Phrase("revok*"),
        Phrase("[withdraw|rescind|cancel|take back] [my]? [consent|permission|subscription|opt in|optin]"),
        Phrase("[do not|dont] [call|text|contact] [list|me]"),
        Phrase("[done|finished|through] with [these|your|the|all|all these|all the]? " + _TEXTS),
        Phrase("[asked|told|ask|tell|said|say|telling|asking] [you|u]? [to]? [stop|quit|unsubscribe|remove me]",
               veto=True),
        Phrase("how [do|can|would|to] [i|we]? [stop|opt out|turn off] [these|this|them|the|your|receiving|getting]? "
               f"{_TEXTS}?"),
        Phrase("[never|didnt|did not] [sign*|subscrib*|opt* in|agree*|consent*|ask*] [up]? [for|to]? "
               f"[this|these|that|any|your|them]? [{_TEXTS_CORE}|list]"),
        Phrase("[never|didnt|did not] [sign*|subscrib*] up", veto=True),
        Phrase("[never|didnt|did not] [subscribed|opted in|consented|gave consent]", veto=True),
        Phrase("[never|didnt|did not] [gave|give] [you|u]? [my|this] number"),
        # Whole-message dismissals: a reasonable person reads them as "stop contacting me".
        Phrase("[stop|quit] [it|that|this|now|them]", whole=True),
        Phrase("[leave me alone|leave us alone|go away|fuck off|f off|piss off|get lost|buzz off|bugger off|"
               "back off|fuck you|screw you|go to hell]", whole=True),
        Phrase("[sorry]? [you have|you got|youve got|u have|u got|u got the|this is|its|thats]? [the|a]? "
               "wrong [number|person|phone] [sorry]?", whole=True),
        # Review: dismissive or suspicious, but a person should decide (marketing pauses meanwhile).
        Phrase("[who is this|who dis|whos this|who are you|who is texting|who is this from|who sent this|"
               "who tf is this|who the hell is this|who the fuck is this]",
               intent="review"),
        Phrase("stop it", intent="review"),
        Phrase("[wrong number|wrong person|leave me alone|go away|fuck off]", intent="review", veto=True),
        Phrase("how did [you|u] get [my|this] [number|info]", intent="review"),
        Phrase("[not|no longer|never] interested", intent="review", veto=True),
        Phrase("^ [thats|that is]? enough [already]? $", intent="review"),
        Phrase("[didnt|did not|never] [ask for|asked for|want|wanted|request|requested] [this|these|that|them|it]",
               intent="review", veto=True),
        Phrase("[keep|keeps|still] [text*|messag*|msg*|contact*|spam*|bother*|sending] [me|us]", intent="review"),
        Phrase("why [are|do|does|is|did] [you|u|this number|someone|they] [keep]? [text*|messag*|msg*|contact*|spam*]",
               intent="review"),
        Phrase("[spam|spammer|spamming|scam|scammer|scammy|harass*|stfu|lawyer|attorney|tcpa|fcc|illegal|unlawful|"
               "unsolicited]", intent="review"),
        Phrase("^ [blocked|blocking you|reported] $", intent="review"),
        Phrase("do [i|we] know [you|u]", intent="review"),
        Phrase("[block|blocked|blocking|report|reported|reporting|sue] [you|u|this|your|this number]",
               intent="review"),
        Phrase("[ill|i will|gonna|going to] [block|report|sue]", intent="review"),
    ),
    negations=(
        "[dont|do not|didnt|did not|never|not|please dont|pls dont] [want to|wanna|mean to|meant to|need to|"
        "ask to|asked to|ask you to|asked you to|want you to|say|said|tell you to|told you to]? "
        "[unsubscribe*|unsub|opt out|optout|opt me out|stop|stopall|revoke|cancel my subscription|remove me]",
        # Not a revocation by the sender either: someone else can't stop, or it is about someone else's phone.
        "[cant|cannot|can not|couldnt|could not] stop",
        # About another person's phone: a person must look even in booking talk (no veto).
        Phrase(f"[stop|quit] {_CONTACT} [my|his|her|their|our] [wife|husband|son|daughter|mom|mother|dad|father|"
               "partner|friend|boss|kid|kids|family|girlfriend|boyfriend|sister|brother|assistant|office|work|"
               "wifes|husbands|sons|daughters|moms|mothers|dads|fathers|partners|friends|bosses|sisters|brothers|"
               "grandma|grandmas|grandpa|grandpas|parents]", intent="review"),
        Phrase(f"[stop|quit] {_CONTACT} [him|her] $", intent="review"),
        # The sender about their own texting ("I'll stop texting you now lol"): not a revocation, but
        # the same message may hold one ("ok ill stop, just stop texting me"), so a person looks.
        Phrase(f"[ill|i will|let me|im going to|i should|we will|ima|i gotta] stop {_CONTACT}", intent="review"),
    ),
    booking_words=(
        "booking", "book", "booked", "rebook", "reservation", "reservations", "reserve", "reserved", "order",
        "orders", "ordered", "event", "events", "party", "appointment", "appt", "dinner", "lunch", "brunch",
        "breakfast", "meal", "meals", "catering", "caterer", "cater", "chef", "chefs", "cook", "menu", "menus",
        "guest", "guests", "people", "headcount", "deposit", "payment", "invoice", "refund", "date", "time",
        "pm", "am", "noon", "midnight", "oclock", "tonight", "today", "tomorrow", "monday", "tuesday",
        "wednesday", "thursday", "friday", "saturday", "sunday", "weekend", "week", "month", "january",
        "february", "march", "april", "june", "july", "august", "september", "october", "november",
        "december", "tasting", "cake", "food", "delivery", "deliver", "pickup", "venue", "wedding", "birthday",
        "anniversary", "shower", "table", "tables", "setup", "arrive", "arrival", "minutes", "hour", "hours",
        "early", "late", "later", "reschedule", "instead", "slot", "plate", "plates", "dish", "dishes",
        "dessert", "drinks", "bar", "kitchen", "class", "service", "staff", "server", "servers", "bartender",
        "quote", "estimate", "contract", "rsvp", "address", "parking", "appetizers", "entree", "entrees",
        "buffet", "allergy", "allergies", "vegan", "vegetarian", "gluten", "course", "courses", "trip",
        "flight", "plans", "plan", "meeting", "rehearsal", "ceremony", "reception", "games", "game", "show",
        "movie", "season", "year", "day", "night", "morning", "afternoon", "evening", "job", "work", "shift",
        # food and drink: "cancel the wine pairing" is about the booking
        "wine", "beer", "cocktail", "cocktails", "pairing", "champagne", "coffee", "salad", "pasta", "steak",
        "chicken", "fish", "seafood", "shrimp", "sides", "appetizer", "starter", "starters", "mains", "main",
        "sorbet", "sliders", "bread", "cheese", "soup", "sauce", "grill", "bbq", "oven", "music", "dj", "band",
        "photographer", "flowers", "decor", "rentals", "linens", "chairs", "tent", "waitlist",
        "calendar", "bill", "receipt", "butter", "veggies", "vegetables", "rice", "noodles", "onion", "onions",
        "garlic", "sake", "sushi", "tray", "trays", "scallops", "mushrooms", "tip", "gratuity", "ice", "napkins",
    ),
    booking_phrases=(
        "stop [by|at|in|over|off|for|past|on|along|and|to|here|there|first]",
        "stop [sign|signs|light|lights]",
        "[on|by|at|near|from|past] the stop",
        "[a|bus|pit|first|last|next|one|quick|final|non|short|another|second|third|extra] stop",
        "[cant|couldnt|can not|cannot|didnt] stop",
        "[ill|i will|let me|im going to|i should|we will|i gotta|ima] stop",
        "stop [it|that|*ing] [haha|lol|lmao|hehe]",
        "stop [worrying|laughing|eating|stressing|apologizing|thanking|talking|crying|smiling|drinking]",
        "end [of|time|times|date|up|result|at|on|by|around|before|after|the night|the day]",
        "[the|at the|by the|in the|dead|high|low|week|weekend|year|month|on] end",
        "[what time|when] [does|do|will|did|is|would] ~? [end|stop]",
        "quit [my|his|her|their|the|smoking|drinking|job|work]",
        "cancel [and|or|then] [rebook|reschedule|move|book]",
        "[if|when|in case] [we|i|you|they] [need to|have to|must|decide to]? cancel",
    ),
    triggers=("stop", "cancel", "end", "quit", "cancelled", "canceled"),
    fuzzy=(
        "stop", "stopall", "unsubscribe", "unsubscribed", "quit", "revoke", "optout", "cancel", "remove",
        "texting", "texts", "messaging", "messages", "contacting", "bothering", "spamming", "harassing",
        "anymore", "number", "please", "unsub", "more", "dont", "text", "take", "list", "your", "this", "leave",
        "alone", "interested", "spam",
    ),
)

# --- Spanish -------------------------------------------------------------------------------

_TEXTOS = (
    "[mensaje*|texto*|sms|msj*|mnsj*|msg*|notificacion*|promocion*|publicidad|anuncio*|oferta*|correo*"
    "|recordatorio*|whatsapp*|spam|mensajitos]"
)
_SEND_SUBJ = (
    "[envies|envie|envien|envias|mandes|mande|manden|escribas|escriba|escriban|contactes|contacte|contacten|"
    "molestes|moleste|molesten|llames|llame|llamen|textees|texteen|vuelvan a|vuelvas a]"
)

SPANISH = LanguageTable(
    language="es",
    opt_out=("alto", "parar", "basta", "baja", "no mas", "detener", "desuscribir", "desuscribirme", "salir",
             "darme de baja", "dar de baja", "anular"),
    opt_out_all=("baja todo", "parar todo", "alto todo", "stop todo", "stop todos", "baja de todo"),
    opt_out_bare=("cancelar", "para", "fin", "terminar"),
    opt_in=(),
    help=("ayuda",),
    filler=(
        "por favor", "porfavor", "porfa", "pf", "xfa", "xfavor", "gracias", "muchas gracias", "ya", "oye",
        "hola", "ahora", "ahorita", "senor", "senora", "de inmediato", "inmediatamente", "ya por favor", "ok",
    ),
    phrases=(
        Phrase(f"[parar|baja|alto|stop|cancelar|cancelen] [de]? [todo|todos|todas] [los|las]? {_TEXTOS}?",
               scope_all=True),
        Phrase(f"no [me|nos] {_SEND_SUBJ}", veto=True),
        Phrase("no [envien|manden|escriban|envies|mandes|escribas|envie|mande] mas"),
        Phrase(f"no [quiero|queremos|deseo|deseamos] que [me|nos]? {_SEND_SUBJ}"),
        Phrase(f"ya no [me|nos]? [{_SEND_SUBJ[1:-1]}|quiero recibir|deseo recibir]"),
        Phrase(f"no [quiero|deseo|necesito|queremos] [recibir|seguir recibiendo]? [mas]? [ningun|ninguna|tus|sus|estos|"
               f"esos|los|las|mas de sus]? [mas]? {_TEXTOS}"),
        Phrase("no [enviarme|mandarme|escribirme|contactarme|textearme|molestarme|llamarme]", veto=True),
        Phrase("[deja|dejen|deje|dejar|dejes|paren|para|pare|parar|pueden dejar|podrian dejar|favor de dejar] de "
               "[enviar*|mandar*|escribir*|contactar*|molestar*|textear*|llamar*]"),
        Phrase(f"[parar|paren|alto|basta|stop|detener|deten|detengan|no mas|suficiente] [los|las|el|estos|"
               f"estas|sus|tus|de|con|a los|con los|de los|de sus|de tus]? {_TEXTOS}"),
        Phrase(f"[cancelar|cancela|cancelen|cancelo|anular|anulen|terminar] [los|las|el|estos|estas|sus|tus|mi|"
               f"mis]? {_TEXTOS}", veto=True),
        Phrase("de baja", veto=True),
        Phrase("[quiero|solicito|pido|deseo|dame|denme|dar] [la|mi|darme de]? baja"),
        Phrase("[desuscribir*|desuscribanme|desuscribeme|desinscribir*|desinscribanme|desuscripcion|desubscribir*]"),
        Phrase("[cancelar|cancelo|anular|anulo] [mi|la]? [suscripcion|subscripcion|inscripcion]"),
        Phrase("[borren|borra|borrar|eliminen|elimina|eliminar|quiten|quita|quitar|saquen|saca|sacar] "
               "[mi numero|mi telefono|mi celular|mi contacto|mis datos|de la lista|de su lista|de tu lista]",
               veto=True),
        Phrase("[sacame|saquenme|sacarme|quitame|quitenme|quitarme|borrame|borrenme|borrarme|eliminame|eliminenme|"
               "eliminarme|bajame|bajenme|bajeme|bajarme] de", veto=True),
        Phrase("[revoco|retiro|cancelo] [mi]? [consentimiento|autorizacion|permiso]"),
        Phrase("no [autorice|autorizo|di permiso|me suscribi|me inscribi|pedi esto|pedi estos]", veto=True),
        Phrase("[dejame|dejenme|dejeme|dejanos] en paz", whole=True),
        Phrase("[es|tiene el|tienen el|tiene un|tienen un|lo siento]? numero equivocado", whole=True),
        Phrase("[se equivocaron|se equivoco|te equivocaste] de numero", whole=True),
        Phrase("[quien es|quien eres|quien habla|quien me escribe|de donde sacaron mi numero]", intent="review"),
        Phrase("[numero equivocado|dejame en paz|dejenme en paz|no me interesa|no nos interesa|estafa|spam|"
               "abogado|denunciar|bloquear|bloqueado]", intent="review"),
        Phrase("no [conozco|reconozco] [este numero|este telefono|su numero|a quien|quien]", intent="review"),
    ),
    negations=(
        "no [quiero|deseo|queria|pedi|dije|me]? [cancelar mi suscripcion|darme de baja|dar de baja|den de baja|"
        "des de baja|desuscribirme|desuscribir|parar|paren]",
    ),
    booking_words=(
        "reserva", "reservas", "reservacion", "reservaciones", "pedido", "orden", "evento", "fiesta", "cita",
        "cena", "comida", "almuerzo", "desayuno", "chef", "cocinero", "menu", "invitados", "personas",
        "deposito", "anticipo", "pago", "factura", "fecha", "hora", "horas", "hoy", "manana", "lunes", "martes",
        "miercoles", "jueves", "viernes", "sabado", "domingo", "semana", "mes", "boda", "cumpleanos",
        "quinceanera", "pastel", "mesa", "mesas", "entrega", "direccion", "salon", "banquete", "platillo",
        "platillos", "platos", "postre", "bebidas", "servicio", "contrato", "cotizacion", "presupuesto",
        "tarde", "noche", "dia", "cuenta", "recibo", "total", "ticket",
    ),
    booking_phrases=("[la|al|el|a la] [fin|final]", "fin de [semana|mes|ano]", "[parar|paren|pare|para] en"),
    triggers=("cancelar", "cancela", "cancelo", "cancelen", "parar", "paren"),
    fuzzy=("cancelar", "mensajes", "desuscribir", "desuscribirme", "envien", "manden", "recibir", "escriban",
           "escribirme", "saquenme", "quiero", "lista"),
)

DEFAULT_TABLES = KeywordTables(languages=(ENGLISH, SPANISH))
