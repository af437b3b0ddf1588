"""Scoring found clusters against the noisy library's truth (from the research prototype's evaluate.py):
precision and recall of the pairs joined transitively, recall per duplicate kind, look-alikes joined,
and where the wrong pairs come from."""
from __future__ import annotations

import numpy as np
import pandas as pd


def _pairs_in_groups(sizes: pd.Series) -> int:
    s = sizes.to_numpy(dtype=np.int64)
    return int((s * (s - 1) // 2).sum())


def evaluate(lib: pd.DataFrame, cluster_of: dict) -> dict:
    """cluster_of: user_id -> cluster id for records in non-singleton clusters."""
    person = lib.set_index("user_id")["person_id"]
    cl = pd.DataFrame({"user_id": list(cluster_of.keys()), "cluster": list(cluster_of.values())})
    cl["person"] = person.reindex(cl.user_id).to_numpy()
    predicted = _pairs_in_groups(cl.groupby("cluster").size())
    correct = _pairs_in_groups(cl.groupby(["cluster", "person"]).size())
    true_total = _pairs_in_groups(lib.groupby("person_id").size())
    res = {
        "records": len(lib), "true_pairs": true_total, "predicted_pairs": predicted,
        "correct_pairs": correct,
        "precision": correct / predicted if predicted else 1.0,
        "recall": correct / true_total if true_total else 1.0,
        "largest_cluster": int(cl.groupby("cluster").size().max()) if len(cl) else 0,
    }
    # true pairs, with the corruption kinds of both records, recovered or not
    multi = lib[lib.person_id.duplicated(keep=False)][["user_id", "person_id", "dup_kind"]]
    tp = multi.merge(multi, on="person_id", suffixes=("_a", "_b"))
    tp = tp[tp.user_id_a < tp.user_id_b]
    ca = tp.user_id_a.map(cluster_of)
    cb = tp.user_id_b.map(cluster_of)
    tp = tp.assign(found=(ca.notna() & (ca == cb)).to_numpy())
    kinds = (tp.dup_kind_a.fillna("") + "+" + tp.dup_kind_b.fillna("")).str.split("+")
    ex = tp.assign(kind=kinds).explode("kind")
    ex = ex[ex.kind != ""].drop_duplicates(["user_id_a", "user_id_b", "kind"])
    per_kind = ex.groupby("kind").found.agg(["mean", "size"])
    res["recall_by_kind"] = {k: {"recall": round(float(r["mean"]), 4), "pairs": int(r["size"])}
                             for k, r in per_kind.iterrows()}
    # look-alike person pairs joined (any of their records in one cluster)
    la = lib[lib.lookalike_kind != ""][["person_id", "lookalike_kind", "lookalike_of"]].drop_duplicates("person_id")
    # clusters each person's records landed in (only clustered records matter)
    pc = cl[["person", "cluster"]].drop_duplicates()
    pair_cl = (la.merge(pc, left_on="person_id", right_on="person")
                 .merge(pc, left_on=["lookalike_of", "cluster"], right_on=["person", "cluster"]))
    joined_pairs = set(zip(pair_cl.person_id, pair_cl.lookalike_of))
    out = {}
    for kind, g in la.groupby("lookalike_kind"):
        joined = sum((p, q) in joined_pairs for p, q in zip(g.person_id, g.lookalike_of))
        out[kind] = {"joined": joined, "pairs": len(g), "rate": round(joined / len(g), 4)}
    res["lookalikes_joined"] = out
    # where the wrong pairs come from: which look-alike kind, or "other"
    info = lib.drop_duplicates("person_id").set_index("person_id")[["lookalike_of", "lookalike_kind"]]
    la_of, la_kind = info.lookalike_of.to_dict(), info.lookalike_kind.to_dict()
    n_person = cl.groupby("cluster").person.nunique()
    wrong_by: dict = {}
    for _, g in cl[cl.cluster.isin(n_person[n_person > 1].index)].groupby("cluster"):
        cnt = g.person.value_counts()
        ps = list(cnt.index)
        for i in range(len(ps)):
            for j in range(i + 1, len(ps)):
                p, q = ps[i], ps[j]
                if la_of[p] == q:
                    k = la_kind[p]
                elif la_of[q] == p:
                    k = la_kind[q]
                elif la_of[p] == la_of[q] != -1:
                    k = la_kind[p] + " (same head)"
                else:
                    k = "other"
                wrong_by[k] = wrong_by.get(k, 0) + int(cnt[p] * cnt[q])
    res["wrong_pairs"] = predicted - correct
    res["wrong_pairs_by_kind"] = wrong_by
    return res
