-- analytics.coauthors: the co-author graph's edges, one row per pair of authors.
create or replace view analytics.coauthors as

with

authorship as (
    select author_id, paper_id from main.authorship
),

authors as (
    select author_id, display_name from main.authors
),

pairs as (
    select
        a.author_id as author_id_a,
        b.author_id as author_id_b,
        count(*) as shared_papers
    from authorship as a
    inner join authorship as b
        on a.paper_id = b.paper_id
        and a.author_id < b.author_id
    group by a.author_id, b.author_id
),

final as (
    select
        pairs.author_id_a,
        author_a.display_name as display_name_a,
        pairs.author_id_b,
        author_b.display_name as display_name_b,
        pairs.shared_papers
    from pairs
    inner join authors as author_a on author_a.author_id = pairs.author_id_a
    inner join authors as author_b on author_b.author_id = pairs.author_id_b
)

select * from final;

comment on view analytics.coauthors is
    'Pairs of authors whose pages list at least one common paper, each pair once '
    '(author_id_a < author_id_b), with the number of shared papers: the co-author graph.';

comment on column analytics.coauthors.author_id_a is 'One author of the pair (the smaller id).';
comment on column analytics.coauthors.display_name_a is 'Display name of author_id_a.';
comment on column analytics.coauthors.author_id_b is 'The other author (the larger id).';
comment on column analytics.coauthors.display_name_b is 'Display name of author_id_b.';
comment on column analytics.coauthors.shared_papers is 'Papers listed on both authors'' pages (the edge weight).';
