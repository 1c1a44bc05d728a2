-- tufa server schema, version 4: metadata documents stored uncompressed (out of line when large).
-- Compressing every document on write cost about a millisecond per 100 KB targets file on each
-- publish, and decompressing it again on each uncached read; JSON metadata is served far more
-- often than it is written, and disk is cheaper than that latency.
ALTER TABLE metadata ALTER COLUMN data SET STORAGE EXTERNAL;
