-- When the message a pause held back is due back (SPEC §6, taskmill.flow.holds): set by the
-- claim that held a paused job and had its worker send it a new, delayed message. Until
-- then that message is on its way, so a claim handed another message of the job while it is
-- paused (one a resume re-sent, then a pause came back) acknowledges it without sending a
-- new one: quick pause/resume cycles no longer add one delayed message per job and cycle. A
-- resume re-sends only jobs whose held message is still ahead. NULL: never held.
ALTER TABLE jobs ADD COLUMN held_until timestamptz;
