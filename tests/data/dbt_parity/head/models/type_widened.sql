select 1 as id, 'a@b.c' as email, cast(10 as bigint) as seats
