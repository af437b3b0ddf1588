-- Unlink closed fees (no balance) from their users, keeping what statistics need as it stands now: the user's group,
-- record type, account type and statistical categories (JSON list; no statistic notes). The row keeps
-- its own type, amounts, dates, owner, item barcode and title; its free-text comment goes. Its transactions stay (the ledger balances). PostgreSQL wording of the JSON list (json_agg).
-- parameters: :ids (fees.id), :now (anonymized_at)
-- expanding: ids
UPDATE fees
SET anon_user_group = u.user_group,
    anon_record_type = u.record_type,
    anon_account_type = u.account_type,
    anon_statistics = COALESCE((SELECT CAST(json_agg(json_build_object('category_type', s.category_type,
                                                                       'statistic_category', s.statistic_category)
                                                     ORDER BY s.id) AS TEXT)
                                FROM user_statistics s WHERE s.user_id = fees.user_id), '[]'),
    anonymized_at = :now,
    comment = NULL,
    user_id = NULL
FROM users u
WHERE u.id = fees.user_id
  AND fees.id IN :ids
  AND fees.status = 'CLOSED'
  AND fees.balance_minor = 0
