CREATE TABLE fleet (container_id text PRIMARY KEY);
INSERT INTO fleet VALUES ('C01');
