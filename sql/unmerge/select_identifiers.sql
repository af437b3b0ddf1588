-- Identifiers now held with any of these values (the From users' identifiers to be re-created).
-- parameters: :values
-- expanding: values
SELECT id_type, value FROM user_identifiers WHERE value IN :values
