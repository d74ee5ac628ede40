-- analytics.paper_summary: one row per paper, with the authors whose pages list it.
create or replace view analytics.paper_summary as

with

papers as (
    select paper_id, title, source, subject from main.papers
),

authorship as (
    select author_id, paper_id from main.authorship
),

authors as (
    select author_id, display_name from main.authors
),

paper_authors as (
    select
        authorship.paper_id,
        count(*) as authors_count,
        list(authors.display_name order by authors.display_name) as author_names
    from authorship
    inner join authors on authors.author_id = authorship.author_id
    group by authorship.paper_id
),

final as (
    select
        papers.paper_id,
        papers.title,
        papers.source,
        papers.subject,
        coalesce(paper_authors.authors_count, 0) as authors_count,
        coalesce(paper_authors.author_names, []::varchar[]) as author_names
    from papers
    left join paper_authors on paper_authors.paper_id = papers.paper_id
)

select * from final;

comment on view analytics.paper_summary is
    'One row per paper: how many authors'' pages list it, and their display names (sorted).';

comment on column analytics.paper_summary.paper_id is 'The paper (papers.paper_id).';
comment on column analytics.paper_summary.title is 'Title, verbatim.';
comment on column analytics.paper_summary.source is 'Source line, verbatim.';
comment on column analytics.paper_summary.subject is 'arXiv subject; null when the source is not ''arXiv.org <Subject>''.';
comment on column analytics.paper_summary.authors_count is 'Authors whose pages list this paper.';
comment on column analytics.paper_summary.author_names is 'Display names of those authors, sorted.';
