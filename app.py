"""The workbench app: page config and navigation; each page lives in dialogues/ui/."""

import streamlit as st

from dialogues.ui.access import gate, signed_in

st.set_page_config(page_title="dialogues", page_icon=":material/forum:", layout="wide")

# The one list of pages: adding a page is adding a line.
PAGES = [
    st.Page("dialogues/ui/run_page.py", title="Run", icon=":material/play_arrow:", default=True),
    st.Page("dialogues/ui/transcripts_page.py", title="Transcripts", icon=":material/article:"),
    st.Page("dialogues/ui/dialogue_page.py", title="Dialogue", icon=":material/forum:"),
    st.Page("dialogues/ui/compare_page.py", title="Compare", icon=":material/insights:"),
    st.Page("dialogues/ui/models_page.py", title="Models", icon=":material/memory:"),
    st.Page("dialogues/ui/annotate_page.py", title="Annotate", icon=":material/rate_review:"),
    st.Page("dialogues/ui/agreement_page.py", title="Agreement", icon=":material/balance:"),
    st.Page("dialogues/ui/export_page.py", title="Export", icon=":material/download:"),
]

# Until a visitor signs in (when access is configured) the menu is hidden and the page waits.
page = st.navigation(PAGES, position="sidebar" if signed_in() else "hidden")
gate()
page.run()
