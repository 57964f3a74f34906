"""The door: when access is configured, every page first asks who the visitor is."""

from __future__ import annotations

import time

import streamlit as st

from dialogues.domain import access
from dialogues.ui import common

WHO = "access_who"  # the name (or 'shared') this browser session proved


def _allowed() -> access.Access:
    with common.user_errors():
        return access.load(access.access_path())


def signed_in() -> bool:
    """True when no access is configured, or this browser session has signed in."""
    return bool(st.session_state.get(WHO)) or not _allowed().configured


def gate() -> None:
    """Stop the page here, showing only the sign-in form, until the visitor has signed in."""
    if signed_in():
        return
    allowed = _allowed()
    st.title("dialogues")
    st.caption("This workbench asks who you are before it shows anything.")
    with st.form("access_form"):
        name = st.text_input("Name", key="access_name",
                             help="Leave empty to use the lab's shared secret.") if allowed.people else ""  # fmt: skip
        secret = st.text_input("Secret", type="password", key="access_secret")
        if st.form_submit_button("Sign in", type="primary"):
            visitor = access.who(allowed, name, secret)
            if visitor:
                st.session_state[WHO] = visitor
                st.rerun()
            time.sleep(1.0)  # slows guessing down
            st.error("Wrong name or secret.")
    st.stop()
