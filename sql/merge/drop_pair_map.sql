-- The batch is done with its pairs.
-- parameters: none
DROP TABLE merge_pair_map
