"""Small built-in lexicons for the extractive backend: places (with their country), location
subreddit aliases, professions, and age / gender / mood cues in English comment text."""

from __future__ import annotations

import re

# country -> cities (lower-case; multi-word names allowed)
_COUNTRIES: dict[str, list[str]] = {
    "United States": [
        "new york", "nyc", "los angeles", "chicago", "houston", "phoenix", "philadelphia", "san antonio",
        "san diego", "dallas", "austin", "san francisco", "seattle", "denver", "boston", "portland",
        "atlanta", "miami", "detroit", "minneapolis", "nashville", "pittsburgh", "baltimore", "las vegas",
        "orlando", "sacramento", "cleveland", "columbus", "new orleans", "salt lake city", "washington dc",
        "st louis", "kansas city", "milwaukee", "raleigh", "charlotte", "tampa", "honolulu", "anchorage",
        "texas", "california", "florida", "ohio", "michigan", "oregon", "colorado", "georgia", "virginia",
        "massachusetts", "washington state", "arizona", "illinois", "pennsylvania", "minnesota", "utah",
    ],
    "Canada": ["toronto", "vancouver", "montreal", "calgary", "ottawa", "edmonton", "winnipeg", "halifax",
               "victoria", "quebec", "ontario", "british columbia", "alberta", "saskatoon", "regina"],
    "United Kingdom": ["london", "manchester", "birmingham", "glasgow", "edinburgh", "liverpool", "leeds",
                       "bristol", "cardiff", "belfast", "sheffield", "newcastle", "nottingham", "brighton",
                       "oxford", "cambridge", "scotland", "england", "wales", "northern ireland"],
    "Ireland": ["dublin", "cork", "galway", "limerick"],
    "Australia": ["sydney", "melbourne", "brisbane", "perth", "adelaide", "canberra", "hobart", "darwin",
                  "queensland", "new south wales", "tasmania"],
    "New Zealand": ["auckland", "wellington", "christchurch", "dunedin"],
    "Germany": ["berlin", "munich", "hamburg", "cologne", "frankfurt", "stuttgart", "dusseldorf", "leipzig", "dresden"],
    "France": ["paris", "lyon", "marseille", "toulouse", "nice", "bordeaux", "lille", "nantes"],
    "Netherlands": ["amsterdam", "rotterdam", "utrecht", "the hague", "eindhoven"],
    "Belgium": ["brussels", "antwerp", "ghent"],
    "Spain": ["madrid", "barcelona", "valencia", "seville", "bilbao"],
    "Portugal": ["lisbon", "porto"],
    "Italy": ["rome", "milan", "naples", "turin", "florence", "venice", "bologna"],
    "Switzerland": ["zurich", "geneva", "basel", "bern"],
    "Austria": ["vienna", "salzburg", "graz"],
    "Sweden": ["stockholm", "gothenburg", "malmo"],
    "Norway": ["oslo", "bergen", "trondheim"],
    "Denmark": ["copenhagen", "aarhus"],
    "Finland": ["helsinki", "tampere", "turku"],
    "Poland": ["warsaw", "krakow", "wroclaw", "gdansk"],
    "Czech Republic": ["prague", "brno"],
    "Hungary": ["budapest"],
    "Greece": ["athens", "thessaloniki"],
    "Turkey": ["istanbul", "ankara"],
    "Russia": ["moscow", "saint petersburg", "st petersburg"],
    "Ukraine": ["kyiv", "kiev", "lviv", "odesa"],
    "Israel": ["tel aviv", "jerusalem"],
    "India": ["mumbai", "delhi", "new delhi", "bangalore", "bengaluru", "chennai", "hyderabad", "kolkata", "pune"],
    "Pakistan": ["karachi", "lahore", "islamabad"],
    "China": ["beijing", "shanghai", "shenzhen", "guangzhou"],
    "Hong Kong": [],
    "Taiwan": ["taipei"],
    "Japan": ["tokyo", "osaka", "kyoto", "yokohama", "sapporo", "fukuoka"],
    "South Korea": ["seoul", "busan"],
    "Singapore": [],
    "Malaysia": ["kuala lumpur"],
    "Thailand": ["bangkok", "chiang mai"],
    "Vietnam": ["hanoi", "ho chi minh city", "saigon"],
    "Philippines": ["manila", "cebu"],
    "Indonesia": ["jakarta", "bali"],
    "Mexico": ["mexico city", "guadalajara", "monterrey", "cancun"],
    "Brazil": ["sao paulo", "rio de janeiro", "rio", "brasilia"],
    "Argentina": ["buenos aires"],
    "Chile": ["santiago"],
    "Colombia": ["bogota", "medellin"],
    "Peru": ["lima"],
    "South Africa": ["cape town", "johannesburg", "durban"],
    "Nigeria": ["lagos", "abuja"],
    "Kenya": ["nairobi"],
    "Egypt": ["cairo"],
    "United Arab Emirates": ["dubai", "abu dhabi"],
}
_COUNTRY_ALIASES = {
    "usa": "United States", "us": "United States", "america": "United States", "united states": "United States",
    "the us": "United States", "the states": "United States", "uk": "United Kingdom", "britain": "United Kingdom",
    "great britain": "United Kingdom", "the uk": "United Kingdom", "holland": "Netherlands", "the netherlands": "Netherlands",
    "korea": "South Korea", "czechia": "Czech Republic", "uae": "United Arab Emirates", "nz": "New Zealand",
}
# location subreddits whose names are not a place name
_SUBREDDIT_ALIASES = {
    "nyc": "new york", "bayarea": "san francisco", "sanfrancisco": "san francisco", "losangeles": "los angeles",
    "washingtondc": "washington dc", "saltlakecity": "salt lake city", "neworleans": "new orleans",
    "stlouis": "st louis", "kansascity": "kansas city", "lasvegas": "las vegas", "sandiego": "san diego",
    "sanantonio": "san antonio", "askuk": "uk", "unitedkingdom": "uk", "casualuk": "uk", "ukpolitics": "uk",
    "ireland": "ireland", "britishcolumbia": "british columbia", "capetown": "cape town", "melbourne": "melbourne",
    "de": "germany", "france": "france", "thenetherlands": "netherlands", "newzealand": "new zealand",
    "southafrica": "south africa", "hongkong": "hong kong", "mexicocity": "mexico city", "saopaulo": "sao paulo",
    "tokyo": "tokyo", "japanlife": "japan", "askanamerican": "united states", "canadaliving": "canada",
}

PLACES: dict[str, tuple[str | None, str]] = {}  # name -> (city or None, country)
for _country, _cities in _COUNTRIES.items():
    PLACES[_country.lower()] = (None, _country)
    for _c in _cities:
        PLACES.setdefault(_c, (_c.title() if _c != "nyc" else "New York", _country))
for _alias, _country in _COUNTRY_ALIASES.items():
    PLACES.setdefault(_alias, (None, _country))


def place_of_subreddit(name: str) -> tuple[str | None, str] | None:
    """'toronto' -> ('Toronto', 'Canada'); 'askuk' -> (None, 'United Kingdom'); 'analog' -> None."""
    n = name.lower().strip()
    n = _SUBREDDIT_ALIASES.get(n, n)
    if not n:
        return None
    if n in PLACES:
        return PLACES[n]
    spaced = n.replace("_", " ")
    return PLACES.get(spaced)


_PLACE_ALT = "|".join(sorted((re.escape(p) for p in PLACES if len(p) > 2 or p in ("uk", "us")), key=len, reverse=True))
PLACE_CUE = re.compile(
    rf"\b(?:i live in|i'm from|i am from|im from|here in|i moved to|moved to|i grew up in|born in|based in|(?<!lives )living in|"
    rf"i'm in|i am in|greetings from)\s+(?:the\s+)?({_PLACE_ALT})\b"
    rf"|(?:^|[.!?]\s+)in (?:the\s+)?({_PLACE_ALT}) we\b",
    re.IGNORECASE,
)

PROFESSIONS = sorted({
    "software engineer", "software developer", "web developer", "developer", "programmer", "data scientist",
    "engineer", "mechanical engineer", "civil engineer", "electrical engineer", "nurse", "registered nurse",
    "doctor", "physician", "surgeon", "dentist", "pharmacist", "paramedic", "emt", "vet", "veterinarian",
    "teacher", "high school teacher", "professor", "lecturer", "student", "grad student", "phd student",
    "lawyer", "attorney", "paralegal", "accountant", "cpa", "banker", "financial analyst", "analyst",
    "consultant", "chef", "cook", "baker", "barista", "bartender", "server", "waiter", "waitress",
    "artist", "illustrator", "graphic designer", "designer", "photographer", "filmmaker", "musician",
    "writer", "journalist", "editor", "architect", "electrician", "plumber", "carpenter", "mechanic",
    "welder", "truck driver", "driver", "pilot", "flight attendant", "police officer", "cop", "firefighter",
    "soldier", "veteran", "farmer", "librarian", "scientist", "researcher", "biologist", "chemist",
    "physicist", "social worker", "therapist", "psychologist", "counselor", "marketing manager", "manager",
    "project manager", "product manager", "sales rep", "salesman", "retail worker", "cashier",
    "stay at home mom", "stay at home dad", "retiree", "game developer", "sysadmin", "it technician",
    "network engineer", "machinist", "construction worker", "real estate agent", "translator",
    "data analyst", "personal trainer", "tattoo artist", "physical therapist", "stay at home parent",
}, key=len, reverse=True)
_PROF_ALT = "|".join(re.escape(p) for p in PROFESSIONS)
PROFESSION_CUE = re.compile(
    rf"\b(?:i'm an?|i am an?|im an?|i work as an?|i worked as an?|(?<!works )(?<!worked )(?<!working )as an?|my job as an?|"
    rf"working as an?|i'm a retired|career as an?|being an?)\s+({_PROF_ALT})s?\b"
    rf"|(?:^|[.!?]\s+)({_PROF_ALT}) here\b",
    re.IGNORECASE,
)

AGE_CUES = [
    re.compile(r"\bi(?:'m| am|m) (\d{2})(?: years? old| yo| y/o|\b(?! ?(?:percent|%|minutes|hours|days|weeks|months|miles|km|lbs|kg|dollars|\$)))", re.IGNORECASE),
    re.compile(r"[\(\[](\d{2}) ?[MFmf][\)\]]"),
    re.compile(r"\bas an? (\d{2})[- ]?(?:year[- ]old|yo|y/o)\b", re.IGNORECASE),
    re.compile(r"\bi (?:just )?turned (\d{2})\b", re.IGNORECASE),
    re.compile(r"\bmy (\d{2})(?:st|nd|rd|th) birthday\b", re.IGNORECASE),
    re.compile(r"(?:^|[.!?]\s+)(\d{2}) ?[MFmf] here\b"),
    re.compile(r"(?:^|[.!?]\s+)at (\d{2}), ", re.IGNORECASE),
]
# "in my 30s": half a vote for each band the decade spans
DECADE_CUE = re.compile(r"\bin my (\d)0s\b", re.IGNORECASE)
GENDER_CUES = [
    (re.compile(r"[\(\[]\d{2} ?[Mm][\)\]]|(?:^|[.!?]\s+)\d{2} ?[Mm] here\b"), "male"),
    (re.compile(r"[\(\[]\d{2} ?[Ff][\)\]]|(?:^|[.!?]\s+)\d{2} ?[Ff] here\b"), "female"),
    (re.compile(r"\b(?:i'm|i am|im|as) an? (?:\w+ )?(?:guy|man|dude|dad|father|husband|boyfriend)\b", re.IGNORECASE), "male"),
    (re.compile(r"\b(?:i'm|i am|im|as) an? (?:\w+ )?(?:woman|girl|lady|mom|mum|mother|wife|girlfriend)\b", re.IGNORECASE), "female"),
]
POSITIVE = set("love loved lovely great awesome amazing beautiful happy glad thanks thank enjoy enjoyed fun favorite favourite best cool nice wonderful excited".split())
NEGATIVE = set("hate hated awful terrible worst angry annoying sad bad boring stupid disappointed sucks ugh".split())


def age_band(age: int) -> str:
    if age < 18:
        return "under 18"
    for hi, band in ((24, "18-24"), (34, "25-34"), (44, "35-44"), (54, "45-54"), (64, "55-64")):
        if age <= hi:
            return band
    return "65+"
