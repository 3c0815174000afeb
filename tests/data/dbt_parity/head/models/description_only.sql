select 1 as id, 'a@b.c' as email, 10 as seats
