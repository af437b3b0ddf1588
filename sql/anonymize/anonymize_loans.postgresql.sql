-- Unlink returned loans from their users, keeping what statistics need as it stands now: the user's
-- group, record type, account type and statistical categories (JSON list, in the order they were
-- recorded; no statistic notes, they are free text). The loan keeps its own dates, library, item
-- barcode and title. PostgreSQL wording of the JSON list (json_agg).
-- parameters: :ids (loans.id), :now (anonymized_at)
-- expanding: ids
UPDATE loans
SET anon_user_group = u.user_group,
    anon_record_type = u.record_type,
    anon_account_type = u.account_type,
    anon_statistics = COALESCE((SELECT CAST(json_agg(json_build_object('category_type', s.category_type,
                                                                       'statistic_category', s.statistic_category)
                                                     ORDER BY s.id) AS TEXT)
                                FROM user_statistics s WHERE s.user_id = loans.user_id), '[]'),
    anonymized_at = :now,
    user_id = NULL
FROM users u
WHERE u.id = loans.user_id
  AND loans.id IN :ids
  AND loans.loan_status = 'COMPLETE'
