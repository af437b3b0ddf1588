"""Find Duplicate Users: unsupervised record linkage of patron records with
splink 4 on an in-process DuckDB.

    pairs = find_duplicate_pairs(users, min_probability=DEFAULT_MIN_PROBABILITY)

`users` is a DataFrame, or an iterable of DataFrames (chunks of a selection,
loaded into DuckDB one by one and dropped, so the library is never one pandas
frame), with one row per user record and the columns
    user_id (int, unique), first_name, middle_name, last_name,
    birth_date (date / datetime / ISO string / null), emails, phones,
    postal_codes, identifiers ("TYPE:value")  -- the four last are lists of
    str, or str with the values separated by `list_separator` (or null).
Other columns are ignored.  The result has one row per scored pair at or above
`min_probability` (user_id_l < user_id_r), its match probability, one word
column per compared field saying how it agreed, an `evidence` summary string,
and `cluster_id` (the transitive duplicate group; a pair's two records always
share it); `attrs["users"]` is the number of records scanned.  The model is trained on the scanned data itself (no labels, no
shipped weights): u from random pairs, m by EM, prior from the expected
duplicate share.
"""
from __future__ import annotations

import logging
import math
import shutil
import tempfile
import time

from collections.abc import Iterable

import duckdb
import pandas as pd
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.blocking_rule_library import CustomRule
from splink.clustering import cluster_pairwise_predictions_at_threshold
from splink.internals.exceptions import EMTrainingException

log = logging.getLogger(__name__)

# Chosen from threshold sweeps on the tuning library (seed 1) and checked on
# libraries with other seeds and a harder mix (RESULTS.md): precision matters
# more than recall, and from 0.9 to 0.95 precision rises more (wrong pairs
# -40 % at 1M) than recall falls (-0.5 pt).  Above 0.95 recall drops fast.
DEFAULT_MIN_PROBABILITY = 0.95

# Identifier types that belong to one person only: two records holding
# *different* values of such a type are evidence against a match.  Barcodes are
# not in here because desk registration issues a new card for the same person.
PERSON_UNIQUE_ID_TYPES = ("UNIV_ID",)

# An email, phone or identifier held by more records than this is a
# placeholder ("noemail@library.org", the library's own phone), not evidence;
# it is dropped before blocking, else one value alone makes N^2/2 pairs.
MAX_RECORDS_SHARING_CONTACT = 10

# Folded (lower-case, accent-free) nickname -> canonical first name.  Names not
# listed are their own canonical form.  Extend with local usage.
NICKNAMES = {
    "bob": "robert", "rob": "robert", "bobby": "robert", "bill": "william",
    "will": "william", "billy": "william", "liz": "elizabeth", "beth": "elizabeth",
    "eliza": "elizabeth", "kate": "katherine", "kathy": "katherine",
    "cathy": "catherine", "cate": "catherine", "maggie": "margaret",
    "peggy": "margaret", "meg": "margaret", "jim": "james", "jimmy": "james",
    "rick": "richard", "dick": "richard", "rich": "richard", "mike": "michael",
    "mick": "michael", "tom": "thomas", "tommy": "thomas", "chris": "christopher",
    "dan": "daniel", "danny": "daniel", "joe": "joseph", "charlie": "charles",
    "chuck": "charles", "tony": "anthony", "alex": "alexander", "sasha": "alexander",
    "nick": "nicholas", "jen": "jennifer", "jenny": "jennifer", "jess": "jessica",
    "becky": "rebecca", "sue": "susan", "susie": "susan", "pat": "patricia",
    "patty": "patricia", "debbie": "deborah", "deb": "deborah", "sam": "samuel",
    "vicky": "victoria", "tori": "victoria", "ed": "edward", "ted": "edward",
    "eddie": "edward", "ben": "benjamin", "matt": "matthew", "andy": "andrew",
    "drew": "andrew", "jon": "jonathan", "tim": "timothy", "steve": "steven",
    "stephen": "steven", "ken": "kenneth", "kenny": "kenneth", "ron": "ronald",
    "don": "donald", "greg": "gregory", "paco": "francisco", "pancho": "francisco",
    "pepe": "jose", "fran": "francesca", "memo": "guillermo", "hans": "johannes",
    "fritz": "friedrich", "aleksandr": "alexander", "alejandro": "alexander",
    "dima": "dmitri", "dmitriy": "dmitri", "katya": "ekaterina",
    "yekaterina": "ekaterina", "misha": "mikhail", "beppe": "giuseppe",
    "toni": "antonio", "grete": "margarethe", "kris": "kristoffer",
    "natasha": "natalia", "tanya": "tatiana", "zach": "zachary", "nate": "nathan",
    "larry": "lawrence", "gerry": "gerald", "phil": "philip", "doug": "douglas",
    "ray": "raymond", "kim": "kimberly", "pam": "pamela", "tina": "christine",
    "mandy": "amanda", "steph": "stephanie",
}

# ---------------------------------------------------------------------------
# Comparisons.  Each is (name, [(sql, words, extra level settings)...]); the
# words become the evidence text.  First and last name are scored separately
# so that "same surname, different first name" (twins, households) costs the
# pair a lot instead of being averaged away in a full-name similarity.
# ---------------------------------------------------------------------------
NULL = {"is_null_level": True}


def _tf(col):
    return {"tf_adjustment_column": col, "tf_adjustment_weight": 1.0}


def _null(*cols):
    return " OR ".join(f"{c}_l IS NULL OR {c}_r IS NULL" for c in cols)


COMPARISONS = [
    ("first_name", [
        (_null("first_name"), "missing", NULL),
        ("first_name_l = first_name_r", "exact", _tf("first_name")),
        ("first_name_l = last_name_r AND last_name_l = first_name_r", "swapped with last name", {}),
        # swapped and then one of the two names changed (married, typo)
        ("first_name_l = last_name_r OR last_name_l = first_name_r", "crossed with last name", {}),
        ("first_canon_l = first_canon_r", "nickname", {}),
        # one edit only counts for names of 4+ letters: Li/Lu are different names
        # (the cheap jaro-winkler test first lets DuckDB skip the slow DL on most pairs)
        ("jaro_winkler_similarity(first_name_l, first_name_r) >= 0.8 AND greatest(length(first_name_l), length(first_name_r)) >= 4 "
         "AND damerau_levenshtein(first_name_l, first_name_r) <= 1", "one typo", {}),
        ("jaro_winkler_similarity(first_name_l, first_name_r) >= 0.88", "similar", {}),
        ("ELSE", "different", {}),
    ]),
    ("last_name", [
        (_null("last_name"), "missing", NULL),
        ("last_name_l = last_name_r", "exact", _tf("last_name")),
        ("first_name_l = last_name_r AND last_name_l = first_name_r", "swapped with first name", {}),
        ("first_name_l = last_name_r OR last_name_l = first_name_r", "crossed with first name", {}),
        # (the cheap jaro-winkler test first lets DuckDB skip the slow DL on most pairs)
        ("jaro_winkler_similarity(last_name_l, last_name_r) >= 0.8 AND greatest(length(last_name_l), length(last_name_r)) >= 4 "
         "AND damerau_levenshtein(last_name_l, last_name_r) <= 1", "one typo", {}),
        ("jaro_winkler_similarity(last_name_l, last_name_r) >= 0.88", "similar", {}),
        # married name: the old surname often survives as a middle name
        ("last_name_l = middle_name_r OR middle_name_l = last_name_r", "matches other's middle name", {}),
        ("ELSE", "different", {}),
    ]),
    ("middle_name", [
        (_null("middle_name"), "missing", NULL),
        ("middle_name_l = middle_name_r", "exact", {}),
        ("left(middle_name_l, 1) = left(middle_name_r, 1)", "same initial", {}),
        ("ELSE", "different", {}),
    ]),
    ("birth_date", [
        (_null("birth_date"), "missing", NULL),
        ("birth_date_l = birth_date_r", "exact", _tf("birth_date")),
        ("dob_swapped_l = birth_date_r", "day/month swapped", {}),
        ("hamming(dob_str_l, dob_str_r) <= 1", "one digit differs", {}),
        ("ELSE", "different", {}),
    ]),
    ("email", [
        (_null("emails"), "missing", NULL),
        ("list_has_any(emails_l, emails_r)", "exact", {}),
        # A shared local part at another provider is only evidence when it is
        # more than the name: dporter@gmail / dporter@hotmail are often two
        # people, and since u is estimated on random pairs (which rarely share
        # a name) a name-based level would get a huge, wrong weight.  Those
        # pairs fall through to "different".
        ("list_has_any(email_users_other_l, email_users_other_r)", "same user part, other domain", {}),
        ("ELSE", "different", {}),
    ]),
    ("phone", [
        (_null("phones"), "missing", NULL),
        ("list_has_any(phones_l, phones_r)", "exact", {}),
        ("ELSE", "different", {}),
    ]),
    ("postal_code", [
        (_null("postal_codes"), "missing", NULL),
        ("list_has_any(postal_codes_l, postal_codes_r)", "exact", {}),
        ("list_has_any(postal_areas_l, postal_areas_r)", "same area", {}),
        ("ELSE", "different", {}),
    ]),
    ("identifiers", [
        ("list_has_any(identifiers_l, identifiers_r)", "shared identifier", {}),
        ("person_ids_l IS NOT NULL AND person_ids_r IS NOT NULL", "conflicting person identifier", {}),
        ("ELSE", "none shared", {}),
    ]),
]


def _gamma_words(levels):
    """gamma value -> words; splink numbers the null level -1 and the other
    levels from n-1 down to 0 in the order given."""
    non_null = [lv for lv in levels if not lv[2].get("is_null_level")]
    out = {-1: "missing"}
    for i, lv in enumerate(non_null):
        out[len(non_null) - 1 - i] = lv[1]
    return out


def _blocking_rules():
    """Candidate pairs.  Each rule recovers a corruption the others miss.

    Plain equi-joins only: splink's arrays_to_explode was the slowest part of
    the scan at 1M records, and lists here hold one or two values, so the
    first two (sorted) values are joined pairwise instead (`*_1`, `*_2`).
    """
    rules = [
        # Same (canonical) name.  The date filter is applied after DuckDB's
        # hash join on the names, so namesakes born on unrelated dates are
        # never scored, which keeps common names ("John Smith" x 350) cheap.
        CustomRule(
            "l.first_canon = r.first_canon AND l.last_name = r.last_name AND ("
            "l.birth_date IS NULL OR r.birth_date IS NULL OR year(l.birth_date) = year(r.birth_date) "
            "OR l.dob_md = r.dob_md OR hamming(l.dob_str, r.dob_str) <= 2)"),
        block_on("birth_date", "substr(last_name, 1, 1)"),      # first-name change
        block_on("birth_date", "substr(first_name, 1, 1)"),     # married / surname typo
        CustomRule("l.dob_swapped = r.birth_date AND substr(l.last_name, 1, 1) = substr(r.last_name, 1, 1)"),
        CustomRule("l.first_name = r.last_name AND l.last_name = r.first_name"),
        block_on("postal_1", "substr(first_name, 1, 3)"),       # new surname and no date
    ]
    for key in ("email", "phone", "ident"):
        rules += [block_on(f"{key}_1"), block_on(f"{key}_2"),
                  CustomRule(f"l.{key}_1 = r.{key}_2"), CustomRule(f"l.{key}_2 = r.{key}_1")]
    return rules


def _settings(n_records: int, expected_duplicate_share: float) -> SettingsCreator:
    comparisons = []
    for name, levels in COMPARISONS:
        lvls = []
        for sql, words, extra in levels:
            lv = {"sql_condition": sql, "label_for_charts": words, **extra}
            lvls.append(lv)
        comparisons.append({"output_column_name": name, "comparison_levels": lvls,
                            "comparison_description": name})
    # fixed prior: duplicates expected among all record pairs
    pairs = n_records * (n_records - 1) / 2
    prior = min(0.5, max(1e-12, expected_duplicate_share * n_records / max(pairs, 1)))
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        probability_two_random_records_match=prior,
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=_blocking_rules(),
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=False,
        max_iterations=25,
        em_convergence=0.001,
    )


_FOLD = ("nullif(regexp_replace(lower(translate(strip_accents(replace(replace(replace(trim({0}), 'ß', 'ss'), 'æ', 'ae'), 'Æ', 'ae')),"
         " 'ØøŁłĐđıÞþð', 'OoLlDdiTtd')), '[^a-z]', '', 'g'), '')")


INPUT_COLUMNS = {"user_id": "BIGINT", "first_name": "VARCHAR", "middle_name": "VARCHAR",
                 "last_name": "VARCHAR", "birth_date": "DATE", "emails": "VARCHAR[]", "phones": "VARCHAR[]",
                 "postal_codes": "VARCHAR[]", "identifiers": "VARCHAR[]"}


def _load(con, users: pd.DataFrame | Iterable[pd.DataFrame], list_separator: str) -> None:
    """The input into the DuckDB table users_in, chunk by chunk.  Joined lists
    are split by DuckDB, not into Python lists: at 1M records those lists and
    one concatenated frame of them were most of the scan's memory."""
    con.execute("CREATE OR REPLACE TABLE users_in ({})".format(
        ", ".join(f"{c} {t}" for c, t in INPUT_COLUMNS.items())))
    for chunk in [users] if isinstance(users, pd.DataFrame) else users:
        if chunk.empty:
            continue
        con.register("chunk_in", chunk[list(INPUT_COLUMNS)])
        # A column's type is what DuckDB infers from this chunk (an all-null
        # column may come as anything), so each is converted by what it is.
        types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE chunk_in)").fetchall())
        exprs = []
        for c, target in INPUT_COLUMNS.items():
            given = types[c]
            if target == "VARCHAR[]" and not given.endswith("[]"):
                exprs.append(f"list_filter(string_split(CAST({c} AS VARCHAR), $sep), lambda x: x <> '')")
            elif target == "DATE" and not (given == "DATE" or given.startswith("TIMESTAMP")):
                exprs.append(f"TRY_CAST(CAST({c} AS VARCHAR) AS DATE)")
            else:
                exprs.append(f"CAST({c} AS {target})")
        select = ", ".join(exprs)
        con.execute(f"INSERT INTO users_in SELECT {select} FROM chunk_in",
                    {"sep": list_separator} if "$sep" in select else None)
        con.unregister("chunk_in")


def _prepare(con):
    """Normalise users_in into the table patrons.  Lists are cleaned with
    DuckDB list functions so no per-row Python runs even at 1M records."""
    con.register("nicknames_in", pd.DataFrame(list(NICKNAMES.items()), columns=["nick", "canon"]))
    fold = _FOLD.format
    person_types = ", ".join(f"'{t}:'" for t in PERSON_UNIQUE_ID_TYPES)
    con.execute(f"""
        CREATE OR REPLACE MACRO nonempty(x) AS CASE WHEN len(x) > 0 THEN x END;
        CREATE OR REPLACE TABLE patrons AS
        WITH base AS (
            SELECT CAST(user_id AS BIGINT) AS unique_id,
                   {fold('first_name')} AS first_name,
                   {fold('middle_name')} AS middle_name,
                   {fold('last_name')} AS last_name,
                   CAST(birth_date AS DATE) AS birth_date,
                   list_distinct(list_filter(list_transform(emails, lambda x: lower(trim(x))),
                                 lambda x: x LIKE '_%@_%')) AS emails,
                   -- last 8 digits: the same phone is stored with and without +country
                   list_distinct(list_filter(list_transform(phones, lambda x: right(regexp_replace(x, '[^0-9]', '', 'g'), 8)),
                                 lambda x: length(x) >= 6)) AS phones,
                   list_distinct(list_filter(list_transform(postal_codes, lambda x: upper(replace(trim(x), ' ', ''))),
                                 lambda x: x <> '')) AS postal_codes,
                   list_distinct(list_filter(list_transform(identifiers, lambda x: upper(trim(x))),
                                 lambda x: x LIKE '_%:_%')) AS identifiers
            FROM users_in
        ), emails AS (
            SELECT *, list_transform(emails, lambda x: split_part(x, '@', 1)) AS email_users FROM base
        )
        SELECT e.unique_id, e.first_name, e.middle_name, e.last_name, e.birth_date,
               coalesce(n.canon, e.first_name) AS first_canon,
               strftime(e.birth_date, '%Y%m%d') AS dob_str,
               CASE WHEN day(e.birth_date) <= 12 AND day(e.birth_date) <> month(e.birth_date)
                    THEN make_date(year(e.birth_date), day(e.birth_date), month(e.birth_date)) END AS dob_swapped,
               nonempty(e.emails) AS emails,
               -- scalar stand-ins for the lists, for blocking (equi-joins)
               list_sort(e.emails)[1] AS email_1, list_sort(e.emails)[2] AS email_2,
               list_sort(e.phones)[1] AS phone_1, list_sort(e.phones)[2] AS phone_2,
               list_sort(e.identifiers)[1] AS ident_1, list_sort(e.identifiers)[2] AS ident_2,
               list_sort(e.postal_codes)[1] AS postal_1,
               strftime(e.birth_date, '%m%d') AS dob_md,
               -- local parts that are more than the person's name (+digits)
               nonempty(list_filter(e.email_users, lambda u: regexp_replace(u, '[^a-z]', '', 'g') NOT IN (
                   coalesce(e.first_name, '') || coalesce(e.last_name, ''),
                   coalesce(e.last_name, '') || coalesce(e.first_name, ''),
                   left(coalesce(e.first_name, ''), 1) || coalesce(e.last_name, ''),
                   coalesce(e.last_name, '') || left(coalesce(e.first_name, ''), 1),
                   coalesce(e.first_name, ''), coalesce(e.last_name, '')))) AS email_users_other,
               nonempty(e.phones) AS phones,
               nonempty(e.postal_codes) AS postal_codes,
               nonempty(list_distinct(list_transform(e.postal_codes, lambda x: left(x, 3)))) AS postal_areas,
               nonempty(e.identifiers) AS identifiers,
               nonempty(list_filter(e.identifiers, lambda x: list_contains([{person_types}], split_part(x, ':', 1) || ':'))) AS person_ids,
               -- random split used to subsample EM training blocks without bias
               CAST(hash(e.unique_id) % 1024 AS INTEGER) AS em_bucket
        FROM emails e LEFT JOIN nicknames_in n ON e.first_name = n.nick
    """)
    con.execute("DROP TABLE users_in")
    con.unregister("nicknames_in")
    _drop_placeholders(con)


def _drop_placeholders(con, limit: int = MAX_RECORDS_SHARING_CONTACT):
    for col, key in (("emails", "email"), ("phones", "phone"), ("identifiers", "ident")):
        common = [r[0] for r in con.execute(
            f"SELECT v FROM (SELECT unnest({col}) AS v FROM patrons) GROUP BY v HAVING count(*) > {limit}"
        ).fetchall()]
        if not common:
            continue
        log.warning("ignoring %d %s shared by more than %d records, e.g. %s", len(common), col, limit, common[:3])
        con.execute("CREATE OR REPLACE TEMP TABLE placeholder_values AS SELECT unnest(?::VARCHAR[]) AS v", [common])
        extra = ", person_ids = nonempty(list_filter(person_ids, lambda x: NOT list_contains(p.vals, x)))" \
            if col == "identifiers" else ""
        con.execute(f"""
            WITH p AS (SELECT list(v) AS vals FROM placeholder_values)
            UPDATE patrons SET {col} = nonempty(list_filter({col}, lambda x: NOT list_contains(p.vals, x))) {extra}
            FROM p
        """)
        con.execute(f"UPDATE patrons SET {key}_1 = list_sort({col})[1], {key}_2 = list_sort({col})[2]")


def _em_rule(con, cols, target_pairs):
    """block_on(cols) restricted to a random share of record buckets so the EM
    pass stays near `target_pairs` comparisons on big libraries."""
    keys = ", ".join(cols)
    nn = " AND ".join(f"{c} IS NOT NULL" for c in cols)
    pairs = con.execute(f"SELECT coalesce(sum(c * (c - 1) / 2), 0) FROM "
                        f"(SELECT count(*) AS c FROM patrons WHERE {nn} GROUP BY {keys})").fetchall()[0][0]
    k = max(1, min(64, math.ceil(pairs / target_pairs)))
    if k == 1:
        return block_on(*cols), pairs
    # keeping pairs with both records in the same bucket modulo k
    # keeps a uniform random 1/k of the pairs in the block
    return block_on(*cols, f"mod(em_bucket, {k})"), pairs / k


def find_duplicate_pairs(
    users: pd.DataFrame | Iterable[pd.DataFrame],
    *,
    min_probability: float = DEFAULT_MIN_PROBABILITY,
    expected_duplicate_share: float = 0.03,
    memory_limit: str = "600MB",
    threads: int = 2,
    temp_dir: str | None = None,
    u_max_pairs: float = 5e5,
    em_target_pairs: float = 1e6,
    verbose: bool = False,
    save_model_to: str | None = None,
    list_separator: str = "\x1f",
) -> pd.DataFrame:
    """Score candidate duplicate pairs and cluster them transitively.

    expected_duplicate_share: share of records expected to be duplicates of
    another record; only sets the prior, so a rough figure is enough.
    save_model_to: write the trained splink model (m/u per level) as JSON, so a
    run's weights can be audited afterwards.
    """
    t0 = time.perf_counter()
    if not verbose:
        logging.getLogger("splink").setLevel(logging.WARNING)
    spill = tempfile.mkdtemp(prefix="dedupe_duckdb_", dir=temp_dir)
    con = duckdb.connect(config={
        "memory_limit": memory_limit, "threads": threads, "temp_directory": spill,
        # ordering is not needed and costs memory on big joins
        "preserve_insertion_order": False,
    })
    try:
        _load(con, users, list_separator)
        timings = {"load": time.perf_counter() - t0}
        _prepare(con)
        n = con.execute("SELECT count(*) FROM patrons").fetchall()[0][0]
        if n < 2:
            return _no_pairs(n)
        db_api = DuckDBAPI(connection=con)
        linker = Linker("patrons", _settings(n, expected_duplicate_share), db_api)
        timings["prepare"] = time.perf_counter() - t0

        linker.training.estimate_u_using_random_sampling(max_pairs=u_max_pairs, seed=42)
        timings["u"] = time.perf_counter() - t0
        # EM passes on blocks where true duplicates are a decent share and no
        # look-alike group dominates.  Blocking on the name alone is avoided:
        # there namesakes (same name, similar name-based emails) outnumber the
        # duplicates at scale and EM learns "namesake" as the match class.
        #   name + date -> trains middle name, contacts, identifiers
        #   date        -> trains names (twins are few)
        #   email       -> trains dates and names
        for cols in (["first_name", "last_name", "birth_date"], ["birth_date"], ["email_1"]):
            rule, npairs = _em_rule(con, cols, em_target_pairs)
            log.info("EM on %s (~%d pairs)", cols, npairs)
            if npairs < 1:  # tiny or duplicate-free library: keep splink's defaults
                log.warning("EM block %s is empty; skipped", cols)
                continue
            try:
                linker.training.estimate_parameters_using_expectation_maximisation(rule)
            except EMTrainingException as e:
                log.warning("EM on %s failed (%s); skipped", cols, str(e).splitlines()[0])
        timings["em"] = time.perf_counter() - t0

        if save_model_to:
            linker.misc.save_model_to_json(save_model_to, overwrite=True)
        pred = linker.inference.predict(threshold_match_probability=min_probability)
        timings["predict"] = time.perf_counter() - t0
        _post_rules(con, pred.physical_name, min_probability)
        timings["post_rules"] = time.perf_counter() - t0
        if con.execute("SELECT count(*) FROM dedupe_pairs").fetchall()[0][0] == 0:
            # nothing to cluster (splink's clustering wants at least one edge)
            con.execute("CREATE OR REPLACE TABLE dedupe_clusters AS "
                        "SELECT NULL::BIGINT AS unique_id, NULL::BIGINT AS cluster_id WHERE false")
            cluster_table = "dedupe_clusters"
        else:
            cluster_table = None
        con.execute("CREATE OR REPLACE TABLE dedupe_nodes AS SELECT unique_id_l AS unique_id FROM dedupe_pairs "
                    "UNION SELECT unique_id_r FROM dedupe_pairs")
        if cluster_table is None:
            cluster_table = cluster_pairwise_predictions_at_threshold(
                "dedupe_nodes", "dedupe_pairs", db_api, node_id_column_name="unique_id",
                threshold_match_probability=min_probability).physical_name
        out = con.execute(f"""
            SELECT p.* EXCLUDE (unique_id_l, unique_id_r),
                   p.unique_id_l AS user_id_l, p.unique_id_r AS user_id_r, c.cluster_id
            FROM dedupe_pairs p JOIN {cluster_table} c ON c.unique_id = p.unique_id_l
            ORDER BY c.cluster_id, match_probability DESC
        """).df()
        timings["cluster"] = time.perf_counter() - t0
        log.info("timings (cumulative s): %s", {k: round(v, 1) for k, v in timings.items()})
        first = ["user_id_l", "user_id_r", "match_probability", "match_weight", "cluster_id", "evidence"]
        out = out[first + [c for c in out.columns if c not in first]]
        out.attrs.update(timings=timings, users=n)
        return out
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def _no_pairs(users: int) -> pd.DataFrame:
    """The result's columns with no rows: fewer than two records make no pair."""
    out = pd.DataFrame(columns=["user_id_l", "user_id_r", "match_probability", "match_weight", "cluster_id",
                                "evidence", "model_probability", "post_rule", *(n for n, _ in COMPARISONS)])
    out.attrs.update(timings={}, users=users)
    return out


def _post_rules(con, pred_table: str, min_probability: float) -> None:
    """Turn gammas into words and apply the look-alike rules the independence
    model cannot express, then keep pairs still above the threshold (table
    dedupe_pairs).  match_weight stays the model's; match_probability is
    capped at 0.01 where a rule fired (model_probability keeps the original)."""
    words = {name: _gamma_words(levels) for name, levels in COMPARISONS}

    def case(name):
        w = words[name]
        arms = " ".join("WHEN {} THEN '{}'".format(g, t.replace("'", "''")) for g, t in w.items())
        return f"CASE gamma_{name} {arms} END"

    g = {name: {t: k for k, t in words[name].items()} for name in words}
    shared_id = f"gamma_identifiers = {g['identifiers']['shared identifier']}"
    # Twins / siblings: same surname and birth date with an unrelated first
    # name.  Only a shared identifier can overrule it.
    twin = (f"gamma_birth_date = {g['birth_date']['exact']} AND gamma_last_name = {g['last_name']['exact']} "
            f"AND gamma_first_name = {g['first_name']['different']} AND NOT ({shared_id})")
    # Parent and child ("John Smith Jr."): same name and address, born a
    # generation apart; a one-digit date typo never moves the year that far.
    parent = (f"gamma_first_name = {g['first_name']['exact']} AND gamma_last_name = {g['last_name']['exact']} "
              f"AND gamma_birth_date = {g['birth_date']['different']} "
              f"AND abs(year(birth_date_l) - year(birth_date_r)) >= 14 AND NOT ({shared_id})")
    # Household members: surname, phone, address and even a family email are
    # shared, but first name and birth date both disagree.  Independence makes
    # the shared contacts add up to a match, so the rule vetoes it.
    household = (f"gamma_first_name = {g['first_name']['different']} "
                 f"AND gamma_birth_date IN ({g['birth_date']['different']}, -1) AND NOT ({shared_id})")
    evidence = " || '; ' || ".join(f"'{n}: ' || {case(n)}" for n in words)
    con.execute(f"""
        CREATE OR REPLACE TABLE dedupe_pairs AS
        WITH s AS (
            SELECT *, CASE WHEN {twin} THEN 'twin rule' WHEN {household} THEN 'household rule'
                        WHEN {parent} THEN 'parent/child rule' END AS post_rule
            FROM {pred_table}
        )
        SELECT unique_id_l, unique_id_r,
               CASE WHEN post_rule IS NOT NULL THEN least(match_probability, 0.01) ELSE match_probability END
                   AS match_probability,
               match_weight, match_probability AS model_probability, post_rule,
               {evidence} AS evidence,
               {", ".join(f"{case(n)} AS {n}" for n in words)}
        FROM s
        WHERE (CASE WHEN post_rule IS NOT NULL THEN least(match_probability, 0.01) ELSE match_probability END)
              >= {min_probability}
    """)
