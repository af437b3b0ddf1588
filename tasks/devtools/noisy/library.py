"""Synthetic patron library with ground truth, for tuning and measuring the
duplicate-user scan.

`generate_library(n_people, seed, mix)` returns one row per *user record* with
the columns the job selects from the library database, plus truth columns that
the scorer must never read:

    person_id        the real person behind the record
    dup_kind         "" for a person's first record, else "+"-joined corruption
                     kinds applied to this duplicate record
    lookalike_kind   twin / parent_child / namesake / household / ""
    lookalike_of     person_id of the person this one was made to resemble

Everything is vectorised numpy over people; Python loops only touch the
duplicate records (~3 % of rows), so 1,000,000 people take a few seconds.
The output is deterministic for (n_people, seed, mix).
"""
from __future__ import annotations

import functools
import unicodedata

import numpy as np
import pandas as pd

# ---------------------------------------------------------------------------
# Name pools.  A hand-written multicultural head (ordered roughly by how
# common the name is, so the Zipf weights make "John Smith" / "Ana Silva"
# repeat a lot) plus a long synthetic tail built from syllables.
# ---------------------------------------------------------------------------
FIRST_HEAD = """
John Maria Michael Ana David James Robert William Mohammed Anna Elizabeth
Mary Thomas Daniel Joseph Sarah Jennifer Richard Christopher Laura Paul Mark
Katherine Jessica Matthew Andrew Emma Li Wei José Juan Carlos Luis Sofia Lucas
Olivia Ahmed Fatima Ali Omar Aisha Hannah Peter Anders Lars Ole Øyvind Ingrid
Kari Nils Sven Erik Astrid Siri Zoë Chloé Léa Noémie Amélie Hélène François
René André Jérôme Müller Jürgen Günter Käthe Björn Søren Åsa Mette Kirsten
Nguyen Minh Anh Thi Linh Huong Quang Hieu Duc Trang Hoa Yuki Hiroshi Kenji
Haruto Sakura Mei Jun Hao Xin Yan Ming Priya Rahul Amit Sunita Anjali Ravi
Deepak Arjun Kavya Ivan Dmitri Olga Natalia Sergei Aleksandr Ekaterina Mikhail
Tatiana Pavel Piotr Katarzyna Agnieszka Tomasz Małgorzata Łukasz Giuseppe
Giovanni Francesca Marco Alessandro Chiara Antonio Francisco Alejandro
Guillermo Javier Lucía Carmen Pilar Joaquín Inês João Gonçalo Conceição
Patricia Linda Barbara Susan Margaret Karen Nancy Lisa Betty Dorothy Sandra
Ashley Kimberly Donna Emily Michelle Carol Amanda Melissa Deborah Stephanie
Rebecca Sharon Cynthia Kathleen Amy Shirley Angela Helen Brenda Pamela Nicole
Samantha Victoria Catherine Christine Debra Rachel Carolyn Janet Virginia
Charles Steven Kevin Brian George Edward Ronald Timothy Jason Jeffrey Ryan
Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin Scott Brandon Benjamin
Samuel Gregory Frank Alexander Raymond Patrick Jack Dennis Jerry Tyler Aaron
Henry Adam Douglas Nathan Zachary Kyle Walter Harold Jeremy Ethan Carl Keith
Roger Gerald Christian Terry Sean Arthur Austin Noah Lawrence Jesse Joe Bryan
Billy Bruce Albert Willie Gabriel Logan Alan Juan Wayne Roy Ralph Randy Eugene
Vincent Russell Louis Philip Bobby Johnny Bradley Kenneth Donald Anthony
Johannes Wolfgang Friedrich Margarethe Kristoffer Dmitriy Yekaterina Siobhán
Seán Niamh Aoife Oisín Ciarán Eoin Saoirse Dagný Þóra Sigurður Guðrún Ásgeir
Kwame Ama Kofi Abena Chinedu Ngozi Emeka Amara Oluwaseun Adebayo Tunde Zainab
Yusuf Ibrahim Mustafa Leila Mehmet Ayşe Emre Zeynep Elif Burak Çağla Gökhan
""".split()

SURNAME_HEAD = """
Smith Silva Nguyễn Johnson Williams Brown Jones García Miller Davis Rodríguez
Martínez Hernández López González Wilson Anderson Thomas Taylor Moore Jackson
Martin Lee Pérez Thompson White Harris Sánchez Clark Ramírez Lewis Robinson
Walker Young Allen King Wright Scott Torres Hill Flores Green Adams Nelson
Baker Hall Rivera Campbell Mitchell Carter Roberts Müller Schmidt Schneider
Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch Bauer Richter
Klein Wolf Schröder Neumann Zimmermann Braun Krüger Hansen Johansen Olsen
Larsen Andersen Pedersen Nilsen Kristiansen Jensen Karlsen Johnsen Pettersen
Eriksen Berg Haugen Hagen Ødegård Solberg Bakken Strand Lie Dahl Lund Moen
Sørensen Nielsen Rasmussen Jørgensen Madsen Kristensen Christensen Andersson
Johansson Karlsson Nilsson Eriksson Larsson Olsson Persson Svensson Gustafsson
Pettersson Jónsson Sigurðsson Guðmundsdóttir Santos Oliveira Souza Pereira
Costa Ferreira Almeida Carvalho Gomes Ribeiro Martins Araújo Barbosa Rocha
Dias Nascimento Conceição Gonçalves Lima Fernandes Moreira Cardoso Teixeira
Correia Mendes Pinto Rossi Russo Ferrari Esposito Bianchi Romano Colombo
Ricci Marino Greco Bruno Gallo Conti De Luca Costa Giordano Mancini Dubois
Durand Lefèvre Leroy Moreau Simon Laurent Michel Garnier Faure Rousseau Blanc
Guérin Chevalier François Gauthier Lefebvre Mercier Bonnet Kowalski
Nowak Wiśniewski Wójcik Kowalczyk Kamiński Lewandowski Zieliński Szymański
Woźniak Dąbrowski Ivanov Smirnov Kuznetsov Popov Vasiliev Petrov Sokolov
Mikhailov Novikov Fedorov Morozov Volkov Wang Li Zhang Liu Chen Yang Huang
Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Lin Gao Luo Trần Lê Phạm Hoàng Huỳnh
Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý Kim Park Choi Jung Kang Cho Yoon
Jang Lim Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura
Kobayashi Kato Patel Singh Kumar Sharma Shah Gupta Khan Ali Ahmed Hussain
Rahman Iqbal Malik Chaudhry Reddy Rao Nair Iyer Das Bose Mukherjee Yilmaz
Kaya Demir Şahin Çelik Yıldız Öztürk Aydın Özdemir Arslan Doğan Murphy Kelly
O'Sullivan Walsh O'Brien Byrne Ryan O'Connor O'Neill Doyle McCarthy Gallagher
Okafor Okonkwo Adeyemi Mensah Boateng Owusu Asante Diallo Traoré Ndiaye
Cohen Levi Mizrahi Friedman Katz Shapiro van der Berg de Jong Jansen de Vries
van Dijk Bakker Visser Smit Meijer de Boer Mulder Porter Cooper Reed Cook
Morgan Bell Murphy Bailey Cox Howard Ward Torres Peterson Gray James Watson
Brooks Sanders Price Bennett Wood Barnes Ross Henderson Coleman Jenkins Perry
Powell Long Patterson Hughes Washington Butler Simmons Foster Bryant
""".split()

# Nickname table shared with the scorer (linkage.NICKNAMES).  Canonical ->
# usual short forms.
NICKNAMES = {
    "Robert": ["Bob", "Rob", "Bobby"], "William": ["Bill", "Will", "Billy"],
    "Elizabeth": ["Liz", "Beth", "Eliza"], "Katherine": ["Kate", "Kathy"],
    "Catherine": ["Cathy", "Cate"], "Margaret": ["Maggie", "Peggy", "Meg"],
    "James": ["Jim", "Jimmy"], "Richard": ["Rick", "Dick", "Rich"],
    "Michael": ["Mike", "Mick"], "Thomas": ["Tom", "Tommy"],
    "Christopher": ["Chris"], "Daniel": ["Dan", "Danny"], "Joseph": ["Joe"],
    "Charles": ["Charlie", "Chuck"], "Anthony": ["Tony"],
    "Alexander": ["Alex", "Sasha"], "Nicholas": ["Nick"],
    "Jennifer": ["Jen", "Jenny"], "Jessica": ["Jess"], "Rebecca": ["Becky"],
    "Susan": ["Sue", "Susie"], "Patricia": ["Pat", "Patty"],
    "Deborah": ["Debbie", "Deb"], "Samantha": ["Sam"], "Samuel": ["Sam"],
    "Victoria": ["Vicky", "Tori"], "Edward": ["Ed", "Ted", "Eddie"],
    "Benjamin": ["Ben"], "Matthew": ["Matt"], "Andrew": ["Andy", "Drew"],
    "Jonathan": ["Jon"], "Timothy": ["Tim"], "Steven": ["Steve"],
    "Stephen": ["Steve"], "Kenneth": ["Ken", "Kenny"], "Ronald": ["Ron"],
    "Donald": ["Don"], "Gregory": ["Greg"], "Francisco": ["Paco", "Pancho"],
    "José": ["Pepe"], "Francesca": ["Fran"], "Alejandro": ["Alex"],
    "Guillermo": ["Memo"], "Johannes": ["Hans"], "Friedrich": ["Fritz"],
    "Aleksandr": ["Sasha"], "Dmitri": ["Dima"], "Dmitriy": ["Dima"],
    "Ekaterina": ["Katya"], "Yekaterina": ["Katya"], "Mikhail": ["Misha"],
    "Giuseppe": ["Beppe"], "Antonio": ["Toni"], "Margarethe": ["Grete"],
    "Kristoffer": ["Kris"], "Natalia": ["Natasha"], "Tatiana": ["Tanya"],
    "Zachary": ["Zach"], "Nathan": ["Nate"], "Lawrence": ["Larry"],
    "Gerald": ["Gerry"], "Philip": ["Phil"], "Douglas": ["Doug"],
    "Raymond": ["Ray"], "Kimberly": ["Kim"], "Pamela": ["Pam"],
    "Christine": ["Chris", "Tina"], "Amanda": ["Mandy"], "Stephanie": ["Steph"],
}

_ONSETS = ["b", "br", "c", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "kr",
           "l", "m", "n", "p", "r", "s", "sh", "st", "t", "th", "tr", "v", "w",
           "z", "", "", "bj", "sk", "sv"]
# plain vowels repeated so diacritics stay occasional, as in real surnames
_VOWELS = ["a", "e", "i", "o", "u"] * 4 + ["ai", "ei", "ou", "ia", "y", "é", "ü", "ö", "ä", "á", "ø", "ã"]
_CODAS = ["", "", "n", "r", "l", "s", "th", "nd", "rt", "k", "m", "x", "ng"]
_SUR_ENDS = ["son", "sen", "berg", "stad", "vik", "ez", "es", "ini", "ova",
             "ski", "ić", "ley", "ton", "ford", "man", "mann", "er", "ard",
             "dóttir", "oğlu", "elli", "ão", "ard", "well", "by", "dal", "heim"]
_FIRST_ENDS = ["a", "o", "an", "en", "ia", "ina", "us", "el", "ie", "ik", "ar",
               "is", "ette", "ja"]


def _synth(rng, n, ends, min_syl, max_syl):
    """n distinct pronounceable synthetic names (deterministic for rng)."""
    out, seen = [], set()
    while len(out) < n:
        k = n - len(out)
        nsyl = rng.integers(min_syl, max_syl + 1, size=k)
        parts = []
        for s in range(max_syl):
            syl = (np.array(_ONSETS, dtype=object)[rng.integers(0, len(_ONSETS), k)]
                   + np.array(_VOWELS, dtype=object)[rng.integers(0, len(_VOWELS), k)]
                   + np.array(_CODAS, dtype=object)[rng.integers(0, len(_CODAS), k)])
            parts.append(np.where(nsyl > s, syl, ""))
        end = np.array(ends, dtype=object)[rng.integers(0, len(ends), k)]
        names = sum(parts[1:], parts[0]) + end
        for nm in names:
            nm = nm.capitalize()
            if 3 <= len(nm) <= 14 and nm not in seen:
                seen.add(nm)
                out.append(nm)
    return out


def _zipf_weights(n_head, n_tail, head_share, k0, s_head=1.0, s_tail=0.7):
    """Head names take `head_share` of the mass with a Zipf-Mandelbrot curve
    (offset k0 keeps the top name near real-world shares: "John" ~2.7 %,
    "Smith" ~1.2 %); the tail is flatter, as in real name distributions."""
    wh = 1.0 / (np.arange(n_head) + k0) ** s_head
    wt = 1.0 / np.arange(10, n_tail + 10) ** s_tail
    return np.concatenate([wh / wh.sum() * head_share, wt / wt.sum() * (1 - head_share)])


@functools.lru_cache(maxsize=None)
def ascii_fold(s: str) -> str:
    """What a desk clerk on a US keyboard types: José -> Jose, Ø -> O."""
    s = s.replace("ß", "ss").replace("Æ", "Ae").replace("æ", "ae")
    s = s.translate(str.maketrans("ØøŁłĐđıÞþð", "OoLlDdiTtd"))
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


# ---------------------------------------------------------------------------
# The mix: every rate the evaluation may want to vary.  Duplicate-kind values
# are independent per-duplicate probabilities (a duplicate always gets >= 1).
# ---------------------------------------------------------------------------
DEFAULT_MIX = {
    "dup_rate": 0.03,          # share of people with a duplicate record
    "triple_share": 0.10,      # of those, share with two duplicates
    # duplicate corruption kinds
    "name_typo": 0.15, "nickname": 0.10, "name_swap": 0.03, "married_name": 0.06,
    "dob_missing": 0.08, "dob_swap": 0.04, "dob_typo": 0.05, "new_email": 0.30,
    "email_missing": 0.10, "no_diacritics": 0.08, "new_phone": 0.25, "moved": 0.25,
    # identifiers of the duplicate
    "shares_univ_id": 0.35,    # of duplicates whose person has a UNIV_ID
    "new_univ_id": 0.03,       # duplicate carries a *different* UNIV_ID
    # look-alikes (share of people)
    "twin": 0.004, "parent_child": 0.003, "namesake": 0.01, "household": 0.01,
    "shared_family_email": 0.15,  # twins / parent+child / household share an email
}
DUP_KINDS = ["name_typo", "nickname", "name_swap", "married_name", "dob_missing",
             "dob_swap", "dob_typo", "new_email", "email_missing", "no_diacritics",
             "new_phone", "moved"]

# A harder library the model was not tuned on: more and nastier corruption.
HARD_MIX = dict(DEFAULT_MIX, **{
    "dup_rate": 0.05, "triple_share": 0.2, "name_typo": 0.30, "nickname": 0.15,
    "name_swap": 0.05, "married_name": 0.10, "dob_missing": 0.15, "dob_swap": 0.08,
    "dob_typo": 0.10, "new_email": 0.45, "email_missing": 0.15, "new_phone": 0.40,
    "moved": 0.40, "shares_univ_id": 0.2, "twin": 0.008, "parent_child": 0.006,
    "namesake": 0.02, "household": 0.02, "shared_family_email": 0.3,
})

GROUPS = np.array(["UNDERGRAD", "GRAD", "FACULTY", "STAFF", "ALUMNI", "PUBLIC", "CHILD"], dtype=object)
GROUP_P = np.array([0.35, 0.12, 0.06, 0.08, 0.14, 0.20, 0.05])
# age range (years) per group, same order as GROUPS
GROUP_AGE = np.array([[17, 26], [21, 40], [28, 72], [20, 67], [22, 85], [16, 90], [3, 16]])
ACADEMIC = {"UNDERGRAD", "GRAD", "FACULTY", "STAFF", "ALUMNI"}

DOMAINS = np.array(["gmail.com", "hotmail.com", "yahoo.com", "outlook.com", "icloud.com",
                    "gmx.de", "web.de", "online.no", "live.com", "protonmail.com",
                    "qq.com", "163.com", "uol.com.br", "orange.fr", "libero.it"], dtype=object)
DOMAIN_P = np.array([0.35, 0.12, 0.10, 0.10, 0.06, 0.04, 0.03, 0.04, 0.03, 0.03,
                     0.03, 0.02, 0.02, 0.02, 0.01])
UNI_DOMAIN = "uni.edu"
COUNTRY_CODES = np.array(["47", "1", "44", "49", "33", "34", "351", "55", "84", "86", "91"], dtype=object)
COUNTRY_P = np.array([0.45, 0.12, 0.08, 0.07, 0.05, 0.05, 0.04, 0.04, 0.04, 0.03, 0.03])
TODAY = np.datetime64("2026-06-01")


def _pick(rng, arr, p, n):
    return np.asarray(arr, dtype=object)[rng.choice(len(arr), size=n, p=np.asarray(p) / np.sum(p))]


_DIGIT_TABLE = np.array([f"{i:04d}" for i in range(10_000)], dtype=object)


def _digits(rng, n, k):
    """n random k-digit strings (leading zeros allowed).  Built from a table of
    4-digit chunks because str-formatting a million ints is the slow part."""
    out = None
    while k > 0:
        c = min(k, 4)
        chunk = _DIGIT_TABLE[rng.integers(0, 10 ** c, size=n)]
        if c < 4:
            chunk = np.array([t[4 - c:] for t in _DIGIT_TABLE[:10 ** c]], dtype=object)[rng.integers(0, 10 ** c, size=n)]
        out = chunk if out is None else out + chunk
        k -= c
    return out


def _lower_ascii(names: np.ndarray) -> np.ndarray:
    """Vectorised ascii folding via the (small) set of distinct names."""
    s = pd.Series(names, dtype=object)
    uniq = pd.unique(s.dropna())
    m = {u: ascii_fold(u).lower().replace(" ", "").replace("'", "").replace("-", "") for u in uniq}
    return s.map(m).to_numpy(dtype=object)


def _email_locals(rng, first, last, dob_year):
    """Name-derived local parts like real people pick: dporter, david.porter,
    jporter193, ... so different people end up with similar addresses."""
    n = len(first)
    f, l = _lower_ascii(first), _lower_ascii(last)
    f0 = pd.Series(f).str[:1].to_numpy(dtype=object)
    yy = pd.Series(dob_year % 100).astype(str).str.zfill(2).to_numpy(dtype=object)
    nn = _digits(rng, n, 2)
    nnn = _digits(rng, n, 3)
    words = np.array(["sun", "wolf", "blue", "book", "star", "moon", "fox", "rain",
                      "jazz", "pixel", "nord", "fjord", "cat", "tiger", "river"], dtype=object)
    handle = words[rng.integers(0, len(words), n)] + words[rng.integers(0, len(words), n)] + nnn
    pat = rng.choice(7, size=n, p=[0.22, 0.18, 0.16, 0.12, 0.12, 0.10, 0.10])
    cands = [f + "." + l, f0 + l, f0 + l + nn, f + l + nnn, f + yy, handle, l + "." + f + nn]
    return np.choose(pat, cands)


def _make_unique(emails: np.ndarray, rng) -> np.ndarray:
    """Different people cannot own the same mailbox unless we share it on
    purpose: append a few digits to later collisions."""
    s = pd.Series(emails, dtype=object)
    for _ in range(5):
        dup = s.notna() & s.duplicated()
        if not dup.any():
            break
        loc = s[dup].str.split("@", n=1)
        s[dup] = loc.str[0] + pd.Series(_digits(rng, int(dup.sum()), 3), index=s[dup].index) + "@" + loc.str[1]
    return s.to_numpy(dtype=object)


def _typo(rng, s: str) -> str:
    """One keyboard edit: substitution, deletion, insertion or transposition."""
    if not s or len(s) < 3:
        return s + "e" if s else s
    i = int(rng.integers(1, len(s)))  # keep the first letter: clerks rarely miss it
    op = int(rng.integers(0, 4))
    letters = "aeiounrstlmdkh"
    c = letters[int(rng.integers(0, len(letters)))]
    if op == 0:
        return s[:i] + c + s[i + 1:] if s[i] != c else s[:i] + "x" + s[i + 1:]
    if op == 1:
        return s[:i] + s[i + 1:]
    if op == 2:
        return s[:i] + c + s[i:]
    if i < len(s) - 1 and s[i] != s[i + 1]:
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    return s[:i] + s[i + 1:]


def _dob_typo(rng, d: np.datetime64):
    """Change one digit of YYYY-MM-DD so that the result is still a valid date."""
    txt = str(d)
    for _ in range(20):
        pos = int(rng.choice([2, 3, 5, 6, 8, 9]))
        new = txt[:pos] + str(int(rng.integers(0, 10))) + txt[pos + 1:]
        if new == txt:
            continue
        try:
            nd = np.datetime64(new)
        except ValueError:
            continue
        if nd < TODAY:
            return nd
    return d + np.timedelta64(1, "D")


def generate_library(n_people: int, seed: int = 0, mix: dict | None = None) -> pd.DataFrame:
    mix = dict(DEFAULT_MIX, **(mix or {}))
    rng = np.random.default_rng(seed)
    # pools depend on the seed as well, so other seeds are genuinely other libraries
    first_pool = np.array(list(dict.fromkeys(FIRST_HEAD)) + _synth(rng, 3000, _FIRST_ENDS, 1, 2), dtype=object)
    sur_head = list(dict.fromkeys(SURNAME_HEAD))
    sur_pool = np.array(sur_head + _synth(rng, 60000, _SUR_ENDS, 1, 2), dtype=object)
    n_fh = len(dict.fromkeys(FIRST_HEAD))
    fw = _zipf_weights(n_fh, len(first_pool) - n_fh, 0.80, 8)
    sw = _zipf_weights(len(sur_head), len(sur_pool) - len(sur_head), 0.50, 12)
    N = n_people

    # ---------------- people ----------------
    first = first_pool[rng.choice(len(first_pool), N, p=fw)]
    last = sur_pool[rng.choice(len(sur_pool), N, p=sw)]
    middle = np.where(rng.random(N) < 0.3, first_pool[rng.choice(len(first_pool), N, p=fw)], None)
    gi = rng.choice(len(GROUPS), N, p=GROUP_P)
    group = GROUPS[gi]
    age_days = (GROUP_AGE[gi, 0] * 365.25 + rng.random(N) * (GROUP_AGE[gi, 1] - GROUP_AGE[gi, 0]) * 365.25).astype(int)
    dob = TODAY - age_days.astype("timedelta64[D]")
    dob_null = rng.random(N) < 0.04
    postal_pool = np.concatenate([_digits(rng, 3000, 4), _digits(rng, 2000, 5)])
    pw = 1.0 / np.arange(5, len(postal_pool) + 5) ** 0.6
    postal1 = postal_pool[rng.choice(len(postal_pool), N, p=pw / pw.sum())]
    postal2 = np.where(rng.random(N) < 0.12, postal_pool[rng.integers(0, len(postal_pool), N)], None)
    postal1 = np.where(rng.random(N) < 0.05, None, postal1)
    cc = _pick(rng, COUNTRY_CODES, COUNTRY_P, N)

    def new_phone(n, ccs):
        return "+" + ccs + np.where(rng.random(n) < 0.5, "9", "4") + _digits(rng, n, 7)
    phone1 = np.where(rng.random(N) < 0.15, None, new_phone(N, cc))
    phone2 = np.where(rng.random(N) < 0.08, new_phone(N, cc), None)

    # ---------------- look-alikes (different people who resemble each other) ----
    la_kind = np.full(N, "", dtype=object)
    la_of = np.full(N, -1, dtype=np.int64)
    free = rng.permutation(N)  # disjoint people for each look-alike kind
    pos = 0

    def take(k):
        nonlocal pos
        out = free[pos:pos + k]
        pos += k
        return out

    shared_email_of = np.full(N, -1, dtype=np.int64)  # person whose private email is reused
    # twins
    k = int(N * mix["twin"] / 2)
    a, b = take(k), take(k)
    last[b], dob[b], postal1[b], postal2[b], dob_null[b] = last[a], dob[a], postal1[a], postal2[a], dob_null[a]
    same_phone = rng.random(k) < 0.6
    phone1[b] = np.where(same_phone, phone1[a], phone1[b])
    gi[b] = gi[a]
    group[b] = group[a]
    newf = first_pool[rng.choice(len(first_pool), k, p=fw)]
    newf = np.where(newf == first[a], first_pool[rng.integers(0, len(first_pool), k)], newf)
    first[b] = newf
    la_kind[b], la_of[b] = "twin", a
    shared_email_of[b] = np.where(rng.random(k) < mix["shared_family_email"], a, -1)
    # parent and child with the same first+last name at the same address
    k = int(N * mix["parent_child"] / 2)
    par, chi = take(k), take(k)
    child_age = rng.integers(4 * 365, 24 * 365, k)
    gap = rng.integers(25 * 365, 41 * 365, k)
    dob[chi] = TODAY - child_age.astype("timedelta64[D]")
    dob[par] = dob[chi] - gap.astype("timedelta64[D]")
    dob_null[chi] = dob_null[par] = False
    group[chi] = np.where(child_age < 17 * 365, "CHILD", "UNDERGRAD")
    group[par] = np.where(rng.random(k) < 0.5, "PUBLIC", "STAFF")
    first[chi], last[chi], postal1[chi] = first[par], last[par], postal1[par]
    middle[chi] = np.where(rng.random(k) < 0.3, "Jr.", middle[chi])
    phone1[chi] = np.where(rng.random(k) < 0.7, phone1[par], phone1[chi])
    la_kind[chi], la_of[chi] = "parent_child", par
    shared_email_of[chi] = np.where(rng.random(k) < mix["shared_family_email"], par, -1)
    # namesakes: a common name copied onto someone unrelated
    k = int(N * mix["namesake"] / 2)
    a, b = take(k), take(k)
    common = np.flatnonzero(pd.Series(first).isin(first_pool[:40]).to_numpy() & pd.Series(last).isin(sur_pool[:40]).to_numpy())
    if len(common):
        a = common[rng.integers(0, len(common), k)]
        a_ok = la_kind[a] == ""
        a, b = a[a_ok], b[a_ok]
        first[b], last[b] = first[a], last[a]
        la_kind[b], la_of[b] = "namesake", a
    # households: 2-4 members share surname, postal code and (often) phone
    k = int(N * mix["household"] / 3)
    heads = take(k)
    for m in range(3):  # household sizes 2, 3 or 4
        members = take(k)
        use = rng.random(k) < [1.0, 0.5, 0.25][m]
        h, mb = heads[use], members[use]
        last[mb], postal1[mb] = last[h], postal1[h]
        phone1[mb] = np.where(rng.random(len(h)) < 0.8, phone1[h], phone1[mb])
        la_kind[mb], la_of[mb] = "household", h
        shared_email_of[mb] = np.where(rng.random(len(h)) < mix["shared_family_email"] / 2, h, -1)

    # ---------------- emails (after names are final) ----------------
    year = dob.astype("datetime64[Y]").astype(int) + 1970
    priv = _make_unique(_email_locals(rng, first, last, year) + "@" + _pick(rng, DOMAINS, DOMAIN_P, N), rng)
    is_acad = pd.Series(group).isin(ACADEMIC).to_numpy()
    inst = _make_unique(_lower_ascii(first) + "." + _lower_ascii(last) + "@" + UNI_DOMAIN, rng)
    email1 = np.where(rng.random(N) < 0.08, None, priv)
    fam = shared_email_of >= 0
    email1[fam] = priv[shared_email_of[fam]]
    email2 = np.where(is_acad & (rng.random(N) < 0.6), inst, None)
    univ = np.where(is_acad, "UNIV_ID:" + pd.Series(rng.permutation(N) + 1_000_000).astype(str).to_numpy(dtype=object), None)

    # ---------------- duplicates ----------------
    n_dup_people = int(N * mix["dup_rate"])
    dup_people = rng.choice(N, n_dup_people, replace=False)
    triples = dup_people[rng.random(n_dup_people) < mix["triple_share"]]
    src = np.concatenate([np.arange(N), dup_people, triples])  # person of each record
    R = len(src)
    is_dup = np.arange(R) >= N
    rec = {
        "first": first[src].copy(), "middle": middle[src].copy(), "last": last[src].copy(),
        "dob": dob[src].copy(), "dob_null": dob_null[src].copy(),
        "email1": email1[src].copy(), "email2": email2[src].copy(),
        "phone1": phone1[src].copy(), "phone2": phone2[src].copy(),
        "postal1": postal1[src].copy(), "postal2": postal2[src].copy(),
        "univ": univ[src].copy(), "group": group[src].copy(),
    }
    kinds = {k: np.zeros(R, bool) for k in DUP_KINDS}
    d_idx = np.flatnonzero(is_dup)
    D = len(d_idx)
    draws = rng.random((D, len(DUP_KINDS))) < np.array([mix[k] for k in DUP_KINDS])
    none = ~draws.any(axis=1)
    draws[np.flatnonzero(none), rng.integers(0, len(DUP_KINDS), none.sum())] = True
    for j, k in enumerate(DUP_KINDS):
        kinds[k][d_idx] = draws[:, j]

    # desk-created records are sparse: middle name often left out
    rec["middle"][d_idx[rng.random(D) < 0.4]] = None
    rec["email2"][d_idx[rng.random(D) < 0.5]] = None
    rec["postal2"][d_idx] = None
    rec["phone2"][d_idx] = None

    def apply(kind, fn):
        idx = np.flatnonzero(kinds[kind])
        if len(idx):
            fn(idx)

    def f_typo(idx):
        on_first = rng.random(len(idx)) < 0.5
        for i, f in zip(idx, on_first):
            key = "first" if f else "last"
            rec[key][i] = _typo(rng, rec[key][i])

    def f_nick(idx):
        ok = []
        for i in idx:
            nick = NICKNAMES.get(rec["first"][i])
            if nick:
                rec["first"][i] = nick[int(rng.integers(0, len(nick)))]
                ok.append(i)
        kinds["nickname"][np.setdiff1d(idx, ok)] = False  # no nickname exists

    def f_swap(idx):
        rec["first"][idx], rec["last"][idx] = rec["last"][idx].copy(), rec["first"][idx].copy()

    def f_married(idx):
        old = rec["last"][idx].copy()
        rec["last"][idx] = sur_pool[rng.choice(len(sur_pool), len(idx), p=sw)]
        keep_old = rng.random(len(idx)) < 0.4
        rec["middle"][idx] = np.where(keep_old, old, rec["middle"][idx])

    def f_dob_missing(idx):
        rec["dob_null"][idx] = True

    def f_dob_swap(idx):
        ok = []
        for i in idx:
            d = str(rec["dob"][i])
            y, m, dd = d[:4], d[5:7], d[8:10]
            if int(dd) <= 12 and dd != m:
                rec["dob"][i] = np.datetime64(f"{y}-{dd}-{m}")
                ok.append(i)
            else:
                rec["dob"][i] = _dob_typo(rng, rec["dob"][i])
                kinds["dob_typo"][i] = True
        kinds["dob_swap"][np.setdiff1d(idx, ok)] = False

    def f_dob_typo(idx):
        for i in idx:
            if not kinds["dob_swap"][i]:
                rec["dob"][i] = _dob_typo(rng, rec["dob"][i])

    def f_new_email(idx):
        n = len(idx)
        words = np.array(["reader", "nightowl", "bookish", "alpha", "omega", "delta",
                          "nova", "echo", "zen", "lynx", "orca", "atlas"], dtype=object)
        loc = words[rng.integers(0, len(words), n)] + "_" + _digits(rng, n, 4)
        old_dom = pd.Series(rec["email1"][idx], dtype=object).str.split("@").str[1].to_numpy(dtype=object)
        dom = _pick(rng, DOMAINS, DOMAIN_P, n)
        dom = np.where(dom == old_dom, np.where(dom == "gmail.com", "outlook.com", "gmail.com"), dom)
        rec["email1"][idx] = loc + "@" + dom
        rec["email2"][idx] = None

    def f_email_missing(idx):
        rec["email1"][idx] = None
        rec["email2"][idx] = None

    def f_no_diacritics(idx):
        for key in ("first", "last", "middle"):
            rec[key][idx] = pd.Series(rec[key][idx], dtype=object).map(
                lambda s: ascii_fold(s) if isinstance(s, str) else s).to_numpy(dtype=object)

    def f_new_phone(idx):
        n = len(idx)
        rec["phone1"][idx] = np.where(rng.random(n) < 0.3, None, new_phone(n, _pick(rng, COUNTRY_CODES, COUNTRY_P, n)))

    def f_moved(idx):
        n = len(idx)
        rec["postal1"][idx] = postal_pool[rng.integers(0, len(postal_pool), n)]

    apply("no_diacritics", f_no_diacritics)  # before typos so a typo is not undone
    apply("nickname", f_nick)
    apply("name_typo", f_typo)
    apply("married_name", f_married)
    apply("name_swap", f_swap)
    apply("dob_missing", f_dob_missing)
    apply("dob_swap", f_dob_swap)
    apply("dob_typo", f_dob_typo)
    apply("new_email", f_new_email)
    apply("email_missing", f_email_missing)
    apply("new_phone", f_new_phone)
    apply("moved", f_moved)
    # a kind that changed nothing (no diacritics to drop) is not a kind
    nd = np.flatnonzero(kinds["no_diacritics"])
    same = pd.Series(rec["first"][nd]).eq(first[src[nd]]) & pd.Series(rec["last"][nd]).eq(last[src[nd]])
    kinds["no_diacritics"][nd[same.to_numpy()]] = False

    # identifiers: every record has its own barcode (desk registration);
    # duplicates sometimes keep the person's UNIV_ID
    has_univ = pd.notna(rec["univ"])
    r = rng.random(R)
    dup_univ = np.where(r < mix["shares_univ_id"], rec["univ"],
                        np.where(r < mix["shares_univ_id"] + mix["new_univ_id"],
                                 "UNIV_ID:" + pd.Series(rng.integers(5_000_000, 9_999_999, R)).astype(str).to_numpy(dtype=object),
                                 None))
    rec["univ"] = np.where(is_dup & has_univ, dup_univ, rec["univ"])
    barcode = "BARCODE:3" + pd.Series(rng.permutation(R) + 10 ** 11).astype(str).to_numpy(dtype=object)
    # duplicates are mostly desk-made INTERNAL records, the SIS feed is EXTERNAL
    acad_rec = pd.Series(rec["group"]).isin(ACADEMIC).to_numpy()
    account = np.where(is_dup, np.where(rng.random(R) < 0.85, "INTERNAL", "EXTERNAL"),
                       np.where(acad_rec, "EXTERNAL", "INTERNAL"))
    rec["group"] = np.where(is_dup & (rng.random(R) < 0.3), "PUBLIC", rec["group"])

    dup_kind = np.full(R, "", dtype=object)
    for k in DUP_KINDS:
        dup_kind = np.where(kinds[k], np.where(dup_kind == "", k, dup_kind + "+" + k), dup_kind)

    def to_lists(a, b):
        # list of the non-null values of two columns per row; the only
        # per-row Python loop, written with conditionals because it is hot
        return [([x, y] if y is not None else [x]) if x is not None else ([y] if y is not None else [])
                for x, y in zip(a, b)]

    order = rng.permutation(R)  # duplicates must not sit next to their original
    user_id = rng.permutation(R).astype(np.int64) + 1_000_000
    birth = pd.Series(np.where(rec["dob_null"], np.datetime64("NaT"), rec["dob"]).astype("datetime64[s]"))
    df = pd.DataFrame({
        "user_id": user_id,
        "primary_id": "P" + pd.Series(user_id).astype(str).to_numpy(dtype=object),
        "first_name": rec["first"], "middle_name": rec["middle"], "last_name": rec["last"],
        "birth_date": birth,
        "emails": to_lists(rec["email1"], rec["email2"]),
        "phones": to_lists(rec["phone1"], rec["phone2"]),
        "postal_codes": to_lists(rec["postal1"], rec["postal2"]),
        "identifiers": to_lists(barcode, rec["univ"]),
        "user_group": rec["group"], "account_type": account,
        "person_id": src.astype(np.int64), "dup_kind": dup_kind,
        "lookalike_kind": la_kind[src], "lookalike_of": la_of[src],
    })
    df = df.iloc[order].reset_index(drop=True)
    for c in ("first_name", "middle_name", "last_name", "primary_id", "user_group", "account_type"):
        df[c] = df[c].astype("str")
    return df


if __name__ == "__main__":
    import sys
    import time
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    t = time.perf_counter()
    lib = generate_library(n, seed=1)
    print(f"{len(lib)} records for {n} people in {time.perf_counter() - t:.1f}s")
    print(lib.head(10).to_string())
    print(lib.dup_kind.str.split("+").explode().value_counts())
    print(lib.lookalike_kind.value_counts())
