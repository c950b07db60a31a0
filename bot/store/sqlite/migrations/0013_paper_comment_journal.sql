-- arXiv's own comment ("14 pages, 6 figures; v2 adds ...") and journal reference, kept on
-- the paper so a followed paper's new version can say what changed in them (issue 14).
ALTER TABLE papers ADD COLUMN arxiv_comment TEXT NOT NULL DEFAULT '';
ALTER TABLE papers ADD COLUMN journal_ref TEXT NOT NULL DEFAULT '';
