-- Unlink requests in history from their users, keeping what statistics need as it stands now: the user's group,
-- record type, account type and statistical categories (JSON list; no statistic notes). The row keeps
-- its own dates, pickup library and title. PostgreSQL wording of the JSON list (json_agg).
-- parameters: :ids (requests.id), :now (anonymized_at)
-- expanding: ids
UPDATE requests
SET anon_user_group = u.user_group,
    anon_record_type = u.record_type,
    anon_account_type = u.account_type,
    anon_statistics = COALESCE((SELECT CAST(json_agg(json_build_object('category_type', s.category_type,
                                                                       'statistic_category', s.statistic_category)
                                                     ORDER BY s.id) AS TEXT)
                                FROM user_statistics s WHERE s.user_id = requests.user_id), '[]'),
    anonymized_at = :now,
    user_id = NULL
FROM users u
WHERE u.id = requests.user_id
  AND requests.id IN :ids
  AND requests.request_status = 'HISTORY'
