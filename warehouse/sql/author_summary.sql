-- analytics.author_summary: one row per author, with what their pages list.
create or replace view analytics.author_summary as

with

authors as (
    select author_id, display_name from main.authors
),

authorship as (
    select author_id, paper_id, source_file from main.authorship
),

papers as (
    select paper_id, subject from main.papers
),

author_papers as (
    select
        authorship.author_id,
        count(*) as papers_count,
        list(distinct papers.subject order by papers.subject)
            filter (where papers.subject is not null) as subjects,
        min(authorship.source_file) as first_source_file
    from authorship
    inner join papers on papers.paper_id = authorship.paper_id
    group by authorship.author_id
),

final as (
    select
        authors.author_id,
        authors.display_name,
        coalesce(author_papers.papers_count, 0) as papers_count,
        coalesce(author_papers.subjects, []::varchar[]) as subjects,
        author_papers.first_source_file
    from authors
    left join author_papers on author_papers.author_id = authors.author_id
)

select * from final;

comment on view analytics.author_summary is
    'One row per author: how many papers their pages list, the distinct arXiv subjects of '
    'those papers, and the first page file (in file-name order) that names them.';

comment on column analytics.author_summary.author_id is 'The author (authors.author_id).';
comment on column analytics.author_summary.display_name is 'Name as shown: ''Given Family[ Suffix]''.';
comment on column analytics.author_summary.papers_count is 'Papers the author''s pages list (0 for a page with no papers).';
comment on column analytics.author_summary.subjects is 'Distinct arXiv subjects of those papers, sorted; empty when none.';
comment on column analytics.author_summary.first_source_file is 'First page file (file-name order) listing one of their papers; null when none.';
