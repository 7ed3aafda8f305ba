-- The photos of a subject (a scan's photos in the console's slot detail).
CREATE INDEX photos_subject ON photos (subject_kind, subject_id);
