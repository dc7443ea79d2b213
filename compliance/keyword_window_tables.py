"""The token-window rules of the consent classifier, as data (matched by compliance/keyword_window.py).

Why they exist (issue 16, point 6): people revoke in their own words, with fillers, extra
words and texting shorthand between the words that carry the meaning ("no more of this stuff
pls", "ok im done w these msgs", "this # doesnt want ur msgs"). A phrase table lists word
sequences; these rules say which *kinds* of words, in which order, within how many words of
each other, make a revocation, so one rule covers the combinations a phrase table would have
to list one by one. FCC 24-24 (docs/compliance.md#revocation-by-any-reasonable-means): any
reasonable means counts, and doubt goes to a person (review), never to nothing.

How to read them:

- ``CLASSES``: a class name and its members, words or phrases written naturally (they are
  normalised like messages: "don't" = "dont", letter repeats collapsed). A message's words
  are tagged with every class whose member starts there. ``IGNORE`` members hide the words
  they cover from every other class ("guest list" is not a ``LIST``, "last text" not a
  ``REF``, "never mind" not a ``NEG``).
- ``WindowRule.steps``: ``(class, gap)`` pairs; each step must start at most ``gap`` words
  after the previous one ends (the first step's gap is unused), inside one sentence and with
  no ``BREAK`` word in between ("stop by and text me" is two requests, not "stop ... text").
  ``"A|B"`` accepts either class; ``"$"`` is the end of the sentence (``gap`` words of any kind
  may remain: "dont text back").
- ``not_after``: classes that, right before the first step, cancel the match ("I'll stop",
  "don't stop", "never stop").
- ``anchor``: see ``WindowRule``; only speed depends on it, never the result.
- ``intent``: ``opt_out`` or ``review``. Booking context vetoes a rule (``veto``, on for all
  but the suspicion rules): an opt-out drops to review, a review to none. A window rule is
  never an opt-out in booking talk.

``ABBREVIATIONS`` are applied to every word first (compliance/keyword_rewrite.py), so the
classes hold only full forms ("u" -> "you", "w" -> "with", "hmu" -> "hit me up").
Change any of these: add the motivating messages to tests/data/consent_window.jsonl and bump
``CLASSIFIER_VERSION`` (compliance/keyword_result.py).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ABBREVIATIONS", "CLASSES", "RULES", "WindowRule"]


@dataclass(frozen=True, slots=True)
class WindowRule:
    name: str
    steps: tuple[tuple[str, int], ...]
    intent: str = "opt_out"  # "opt_out" | "review"
    language: str = "en"
    not_after: tuple[str, ...] = ()
    # Booking context lowers the verdict (opt-out to review, review to none). Off for suspicion
    # about the sender, which a booking does not explain ("how did you get my number? I booked").
    veto: bool = True
    # The class the rule is looked up by (default: its last class): the one whose words are
    # rarest in ordinary messages, so that most messages never reach the rule.
    anchor: str = ""


# Texting shorthand, one word to its full form. Only forms a reader takes for exactly these
# words: "u" is "you" in a text, never a letter of the alphabet in a catering chat.
ABBREVIATIONS: dict[str, str] = {
    "u": "you", "ur": "your", "yr": "your", "r": "are", "w": "with", "b4": "before", "hmu": "hit me up",
    "tryna": "trying to", "wanna": "want to", "gonna": "going to", "gotta": "got to", "idc": "i dont care",
    "idk": "i dont know", "dnt": "dont", "dun": "dont", "nomore": "no more", "textme": "text me",
    "txtme": "text me", "msgme": "message me", "stopit": "stop it", "leavemealone": "leave me alone",
    "yall": "you all", "cuz": "because", "bc": "because", "abt": "about", "rn": "right now", "fr": "for real",
    "srsly": "seriously", "nvm": "never mind", "ima": "im going to", "imma": "im going to", "lemme": "let me",
    "gimme": "give me", "dunno": "dont know", "wat": "what", "wut": "what", "whr": "where", "howd": "how did",
    "whered": "where did", "whyd": "why did", "msg": "message", "msgs": "messages", "msging": "messaging",
    "msgd": "messaged", "msged": "messaged", "txt": "text", "txts": "texts", "txting": "texting",
    "txted": "texted", "txtd": "texted", "tx": "texts", "mssg": "message", "mssgs": "messages",
    "msj": "mensaje", "msjs": "mensajes", "mnsj": "mensaje",
    "mnsjs": "mensajes", "xfa": "por favor", "porfa": "por favor",
}

_REF = (
    "texts", "text", "text messages", "messages", "message", "sms", "promos", "promo", "promotions", "ads",
    "advertisements", "advertising", "alerts", "notifications", "reminders", "deals", "offers", "coupons",
    "marketing", "spam", "robotexts", "junk", "crap", "bs", "contact", "contacting", "messaging", "texting",
    "texted", "messaged", "contacted", "being texted", "being contacted", "this stuff", "these things",
    "of these", "of this stuff", "of that stuff", "of your stuff", "of this crap", "of this spam", "newsletters",
    "updates", "mensajes", "mensaje", "mensajitos", "textos", "texto", "promociones", "ofertas", "publicidad",
    "anuncios", "notificaciones", "recordatorios", "correos", "whatsapps",
)
_NUM = (
    "this number", "my number", "this phone", "my phone", "my phone number", "this phone number", "my cell",
    "this cell", "my cell number", "my info", "my contact info", "my contact", "my details", "my digits",
)

CLASSES: dict[str, tuple[str, ...]] = {
    "IGNORE": (
        "guest list", "rsvp list", "wait list", "waitlist", "invite list", "shopping list", "grocery list",
        "song list", "playlist", "to do list", "todo list", "bucket list", "price list", "wine list",
        "list of", "guest count", "never mind", "nevermind", "last text", "last message", "previous text",
        "previous message", "that text", "group text", "group chat", "group message", "confirmation text",
        "confirmation message", "earlier text", "other text", "wrong text", "texts to stop", "messages to stop",
        "reminders to stop", "texts to end", "lista de invitados", "lista de regalos", "lista de compras",
        "no more than", "no more room", "no mas de", "you later", "me know",
    ),
    "BREAK": ("and", "but", "so", "then", "because", "if", "when", "while", "until", "y", "pero", "porque"),
    "STOP": (
        "stop", "quit", "cease", "halt", "pause", "discontinue", "enough", "no more", "no further", "no mas",
        "cut it out", "cut out", "knock it off", "shut up", "cease and desist", "done with", "im done", "done getting",
        "done receiving", "finished with", "so over", "im over", "im so over", "i am over", "unsubscribe",
        "unsubscribe from", "unsub", "opt out", "optout", "block", "turn off", "disable", "get rid of",
        "you stopped", "quit with", "stop with", "enough with", "enough of",
    ),
    "SELF": (
        "ill", "i will", "im going to", "going to", "let me", "i should", "i got to", "i need to", "we will",
        "well", "i wont", "we wont", "dont", "do not", "never", "cant", "cannot", "not", "didnt", "wont",
        "why did you", "did you", "you can", "i can", "i had to", "we had to",
    ),
    "REF": _REF,
    "NUM": _NUM,
    "NUMTO": ("to this number", "to my number", "to this phone", "to my phone", "to me", "to us"),
    "NEG": (
        "dont", "do not", "doesnt", "does not", "never", "no need to", "dont need to", "dont ever", "please dont",
        "pls dont", "plz dont", "please do not", "pls do not",
        "can you not", "could you not", "would you not", "no longer", "dont even",
    ),
    "NEGWANT": (
        "rather not", "would rather not", "not trying to", "prefer not to", "no longer want", "no longer wish",
        "not want", "dont care for",
    ),
    "CONTACT": (
        "text", "texting", "message", "messaging", "contact", "contacting", "reach out", "reach out to", "email",
        "emailing", "ping", "bother", "bothering", "spam", "spamming", "sms",
    ),
    "CONTACTME": (
        "hit me up", "hitting me up", "blowing up my phone", "blowing my phone up", "bugging me", "bothering me",
        "texting me", "messaging me", "contacting me", "spamming me", "emailing me", "harassing me", "hmu",
    ),
    "OBJ": (
        "me", "us", "this number", "my number", "this phone", "my phone", "here", "again", "anymore", "any more",
        "no more", "ever again", "me again", "to me", "to this number",
    ),
    "SEND": ("send", "sending", "forward"),
    "DESIRE": (
        "want", "need", "like", "wish", "care for", "consent to", "agree to", "trying to get", "want to get",
        "want to receive", "need to get", "want any", "want anymore",
    ),
    "HEAR": ("hear from", "hear anything from", "hear more from"),
    "YOU": ("you", "you all", "you guys", "you people", "your company", "your business", "your team"),
    "REMOVE": ("remove", "delete", "erase", "lose", "forget", "unlist", "purge"),
    "TAKE": ("take", "get", "drop", "scratch", "cross", "wipe"),
    "OFF": ("off", "out", "out of", "off of"),
    "REMOVED": ("removed", "deleted", "taken off", "erased", "off your list", "off the list", "taken out"),
    "ME": ("me", "us", "myself"),
    "LIST": (
        "list", "lists", "texting list", "text list", "sms list", "mailing list", "contact list", "marketing list",
        "messaging list", "distribution list", "system", "database", "contacts",
    ),
    "OUTOF": (
        "want out of", "want out", "count me out of", "count me out", "take me out of",
        "opt out of", "let me out of", "opt me out of",
    ),
    "PERMISSION": ("permission", "consent", "authorization", "authorisation", "authorized", "consented", "agreed"),
    "NEVER": ("never", "didnt", "did not", "dont remember", "do not remember", "never once"),
    "GAVE": ("gave", "give", "given", "provided", "shared", "signed up", "sign up", "subscribed", "opted in"),
    "NOTFOR": ("not for",),
    "BEON": ("be on", "stay on", "remain on", "be in"),
    "Q": ("how", "where", "who", "why", "how the hell", "where the hell", "how come", "wheres", "hows", "whos"),
    "GET": (
        "get", "got", "gotten", "gave", "give", "given", "have", "has", "had", "find", "found", "ahold", "a hold",
        "obtain", "obtained", "grab", "grabbed", "buy", "bought", "sell", "sold",
    ),
    "WHY": ("why", "how come"),
    "GETTING": (
        "getting", "receiving", "get", "keep getting", "keep receiving", "still getting", "still receiving",
        "sending me", "keep texting", "keep messaging",
    ),
    "THIS": ("this", "these", "them", "those", "all this", "all these"),
    "KNOW": ("know", "recognize", "recognise"),
    "WHOTHIS": ("who this is", "who this", "who you are", "who is texting", "who is this", "you", "this number"),
    "UGH": ("ugh", "smh", "wth", "wtf", "ffs", "jfc", "eww"),
    # Spanish
    "STOP_ES": (
        "paren", "parar", "dejen", "basta", "ya basta", "no mas", "ya no mas", "suficiente", "ya estuvo",
        "ya estuvo con", "detengan", "detener", "alto", "alto a", "cancelen", "ya no quiero mas",
    ),
    "NEG_ES": ("no", "ya no", "nunca", "jamas", "favor de no", "por favor no", "no me", "no nos", "ya no me"),
    "SEND_ES": (
        "manden", "mandes", "mande", "envien", "envies", "envie", "escriban", "escribas", "escriba", "contacten",
        "molesten", "llamen", "textees", "texteen", "mandar", "enviar", "escribir", "contactar", "escribirme",
        "mandarme", "enviarme", "contactarme", "molestarme", "textearme", "sigan mandando", "sigan enviando",
        "sigan escribiendo", "sigan molestando", "sigan mandandome", "vuelvan a escribir", "vuelvan a escribirme",
        "vuelvan a mandar", "vuelvan a contactar", "vuelvan a contactarme", "vuelvan a enviar",
    ),
    "WANT_ES": ("quiero", "queremos", "deseo", "deseamos", "necesito"),
    "RECIBIR_ES": ("recibir", "seguir recibiendo", "que me manden", "que me envien"),
    "NADA_ES": ("nada", "nada mas", "ningun mensaje", "ninguno"),
    "REMOVE_ES": (
        "borren", "borra", "borrar", "eliminen", "elimina", "eliminar", "quiten", "quita", "quitar", "saquen",
        "saca", "sacar", "bajen",
    ),
    "NUM_ES": (
        "este numero", "mi numero", "mi telefono", "mi celular", "mi cel", "este telefono", "este cel",
        "mis datos", "mi contacto",
    ),
    "LEAVE_ES": ("salirme", "salir", "sacarme", "quitarme", "borrarme", "darme de baja"),
    "LIST_ES": ("lista", "listas", "sistema", "base de datos"),
    "REMOVEME_ES": (
        "borrenme", "borrame", "eliminenme", "eliminame", "sacame", "saquenme", "quitenme", "quitame", "bajenme",
        "bajame", "desuscribanme",
    ),
    "NEVER_ES": ("nunca", "jamas", "yo nunca", "yo no"),
    "SIGNED_ES": (
        "me suscribi", "me inscribi", "me registre", "me apunte", "les di mi numero", "di mi numero",
        "di permiso", "autorice", "acepte",
    ),
    "Q_ES": ("de donde", "como", "quien", "quienes", "por que", "porque", "con que derecho"),
    "GET_ES": (
        "sacaron", "saco", "sacan", "consiguieron", "consiguio", "consiguen", "dio", "dieron", "tienen",
        "tiene", "obtuvieron", "obtuvo", "paso", "pasaron",
    ),
    "WHY_ES": ("por que", "porque", "xq", "pq"),
    "PERSIST_ES": (
        "me siguen", "siguen", "sigues", "me escriben", "me mandan", "me envian", "me estan escribiendo",
        "me llegan",
    ),
}

RULES: tuple[WindowRule, ...] = (
    # Revocations (opt-out; review in booking talk).
    WindowRule("stop_ref", (("STOP", 0), ("REF", 3)), not_after=("SELF",)),
    WindowRule("stop_contact", (("STOP", 0), ("CONTACT", 2), ("OBJ", 2)), not_after=("SELF",), anchor="CONTACT"),
    WindowRule("stop_contact_me", (("STOP", 0), ("CONTACTME", 2)), not_after=("SELF",)),
    WindowRule("neg_contact", (("NEG", 0), ("CONTACT", 2), ("OBJ", 3)), anchor="CONTACT"),
    WindowRule("neg_contact_me", (("NEG", 0), ("CONTACTME", 2))),
    WindowRule("neg_send", (("NEG", 0), ("SEND", 2), ("REF|NUMTO", 3)), anchor="SEND"),
    WindowRule("neg_want", (("NEG", 0), ("DESIRE", 1), ("REF", 4))),
    WindowRule("neg_want_ref", (("NEGWANT", 0), ("REF", 3))),
    WindowRule("neg_hear", (("NEG", 0), ("DESIRE", 1), ("HEAR", 1), ("YOU", 0)), anchor="HEAR"),
    WindowRule("remove_number", (("REMOVE", 0), ("NUM", 1))),
    WindowRule("take_number_off", (("TAKE", 0), ("NUM", 1), ("OFF", 1)), anchor="NUM"),
    WindowRule("want_number_removed", (("DESIRE", 0), ("NUM", 0), ("REMOVED", 1))),
    WindowRule("take_me_off", (("TAKE", 0), ("ME", 0), ("OFF", 0), ("REF|LIST", 3))),
    WindowRule("out_of", (("OUTOF", 0), ("REF|LIST", 3))),
    WindowRule("no_permission", (("NEG|NEVER", 0), ("PERMISSION", 4), ("CONTACT|CONTACTME|REF|NUM", 4)),
               anchor="PERMISSION"),
    WindowRule("never_gave_number", (("NEVER", 0), ("GAVE", 0), ("NUM", 3))),
    WindowRule("not_for_texts", (("NOTFOR", 0), ("REF", 1))),
    WindowRule("not_on_list", (("NEG", 0), ("DESIRE", 1), ("BEON", 1), ("LIST", 3))),
    WindowRule("es_stop_ref", (("STOP_ES", 0), ("REF", 3)), language="es"),
    WindowRule("es_neg_send", (("NEG_ES", 0), ("SEND_ES", 2)), language="es"),
    WindowRule("es_neg_want_receive", (("NEG_ES", 0), ("WANT_ES", 0), ("RECIBIR_ES", 1), ("NADA_ES|REF", 3)),
               language="es", anchor="RECIBIR_ES"),
    WindowRule("es_neg_want_ref", (("NEG_ES", 0), ("WANT_ES", 0), ("REF", 3)), language="es"),
    WindowRule("es_remove_number", (("REMOVE_ES", 0), ("NUM_ES", 1)), language="es"),
    WindowRule("es_leave_list", (("LEAVE_ES", 0), ("LIST_ES", 3)), language="es"),
    WindowRule("es_remove_me", (("REMOVEME_ES", 0), ("$", 2)), language="es"),
    WindowRule("es_never_signed", (("NEVER_ES", 0), ("SIGNED_ES", 1)), language="es"),
    # Suspicion and complaints (review; none in booking talk).
    WindowRule("number_source", (("Q", 0), ("GET", 4), ("NUM", 3)), intent="review", veto=False),
    WindowRule("why_getting", (("WHY", 0), ("GETTING", 3), ("REF|THIS", 3)), intent="review", veto=False, anchor="WHY"),
    WindowRule("dont_know_sender", (("NEG", 0), ("KNOW", 0), ("WHOTHIS", 1)), intent="review", veto=False,
               anchor="KNOW"),
    WindowRule("neg_contact_alone", (("NEG", 0), ("CONTACT", 1), ("$", 1)), intent="review", anchor="CONTACT"),
    WindowRule("complaint", (("UGH", 0), ("REF|THIS", 2)), intent="review", anchor="UGH"),
    WindowRule("es_number_source", (("Q_ES", 0), ("GET_ES", 2), ("NUM_ES", 2)), intent="review", veto=False,
               language="es"),
    WindowRule("es_why_persist", (("WHY_ES", 0), ("PERSIST_ES", 1)), intent="review", veto=False, language="es"),
)
