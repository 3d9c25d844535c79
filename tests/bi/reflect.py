"""Reflects every view of schemas audience and audience_views as a BI tool
does, and reads each: exits non-zero on a warning, a view or column
without a comment, or a value of the tenant this login must not see."""
import sys
import warnings

from sqlalchemy import create_engine, exc, inspect, text

url, unseen = sys.argv[1], sys.argv[2]
# "Did not recognize type ..." and every other SQLAlchemy warning fail it.
warnings.simplefilter("error", exc.SAWarning)
engine = create_engine(url)
inspector = inspect(engine)
problems, views, columns = [], 0, 0
with engine.connect() as connection:
    for schema in ("audience", "audience_views"):
        for view in inspector.get_view_names(schema=schema):
            views += 1
            name = f"{schema}.{view}"
            if not inspector.get_table_comment(view, schema=schema).get("text"):
                problems.append(f"{name}: no comment")
            for column in inspector.get_columns(view, schema=schema):
                columns += 1
                if not column.get("comment"):
                    problems.append(f"{name}.{column['name']}: no comment")
            quoted = ".".join(engine.dialect.identifier_preparer.quote(part) for part in (schema, view))
            for row in connection.execute(text(f"SELECT * FROM {quoted}")):
                if unseen in " ".join(str(value) for value in row):
                    problems.append(f"{name}: shows a row of tenant {unseen!r}: {row}")
engine.dispose()
if views < 10:
    problems.append(f"only {views} views reflected")
for problem in problems:
    print(problem, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"BI reflection: {views} views, {columns} columns reflected and commented; no row of another tenant")
