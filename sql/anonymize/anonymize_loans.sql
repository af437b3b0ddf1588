-- Unlink returned loans from their users, keeping what statistics need as it stands now: the user's
-- group, record type, account type and statistical categories (JSON list, in the order they were
-- recorded; no statistic notes, they are free text). The loan keeps its own dates, library, item
-- barcode and title. Returns nothing; the caller compares the row count with what it re-checked.
-- parameters: :ids (loans.id), :now (anonymized_at)
-- expanding: ids
UPDATE loans
SET anon_user_group = u.user_group,
    anon_record_type = u.record_type,
    anon_account_type = u.account_type,
    anon_statistics = (SELECT json_group_array(json_object('category_type', s.category_type,
                                                           'statistic_category', s.statistic_category))
                       FROM user_statistics s WHERE s.user_id = loans.user_id),
    anonymized_at = :now,
    user_id = NULL
FROM users u
WHERE u.id = loans.user_id
  AND loans.id IN :ids
  AND loans.loan_status = 'COMPLETE'
