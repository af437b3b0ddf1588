-- Clash rule: the To user's preferred phone (and preferred SMS phone) stay preferred. Where the To
-- user already has one, the From user's phones arrive without that flag. Runs before move_phones.
-- parameters: none (pairs in merge_pair_map)
UPDATE user_phones
SET preferred = CASE WHEN EXISTS (
        SELECT 1 FROM user_phones t JOIN merge_pair_map m ON t.user_id = m.to_id
        WHERE m.from_id = user_phones.user_id AND t.preferred = TRUE) THEN FALSE ELSE preferred END,
    preferred_sms = CASE WHEN EXISTS (
        SELECT 1 FROM user_phones t JOIN merge_pair_map m ON t.user_id = m.to_id
        WHERE m.from_id = user_phones.user_id AND t.preferred_sms = TRUE) THEN FALSE ELSE preferred_sms END
WHERE user_id IN (SELECT from_id FROM merge_pair_map)
  AND (preferred = TRUE OR preferred_sms = TRUE)
