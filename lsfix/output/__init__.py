"""What lsfix writes for people and programs: JSON and TSV documents, tables, Markdown/HTML reports, plots (the only matplotlib room)."""
