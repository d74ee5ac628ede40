-- analytics.subject_counts: how many papers (and authors) per source line and subject.
create or replace view analytics.subject_counts as

with

papers as (
    select paper_id, source, subject from main.papers
),

authorship as (
    select author_id, paper_id from main.authorship
),

per_source as (
    select
        papers.source,
        papers.subject,
        count(distinct papers.paper_id) as papers_count,
        count(distinct authorship.author_id) as authors_count
    from papers
    left join authorship on authorship.paper_id = papers.paper_id
    group by papers.source, papers.subject
),

final as (
    select source, subject, papers_count, authors_count
    from per_source
)

select * from final;

comment on view analytics.subject_counts is
    'Papers per source line and subject (subject is null when the source is not '
    '''arXiv.org <Subject>''), with the number of distinct authors listing them.';

comment on column analytics.subject_counts.source is 'Source line, verbatim.';
comment on column analytics.subject_counts.subject is 'arXiv subject; null when the source is not ''arXiv.org <Subject>''.';
comment on column analytics.subject_counts.papers_count is 'Distinct papers with this source line.';
comment on column analytics.subject_counts.authors_count is 'Distinct authors whose pages list one of them.';
