"""Hand-made sessions for builder, budget and reward tests (no files, no network)."""

from __future__ import annotations

from customer_r1.actions import Action
from customer_r1.domain import Observation, Session, ShoppingData, Step, User


def page(tag: str, n_items: int) -> str:
    """A page with ``n_items`` product links and a search box; size grows with n_items."""
    items = "".join(
        f'<div name="results.{tag}_item_{j}"><a name="results.{tag}_item_{j}.title">'
        f"Item {j} of {tag} at ${j}.99</a></div>"
        for j in range(n_items)
    )
    return (
        '<html><body><div name="nav_bar"><input name="nav_bar.search_input" type="text"/>'
        f'<button name="nav_bar.search_button" type="submit">Go</button></div>{items}</body></html>'
    )


def survey(i: int) -> dict:
    return {
        "Demographic Information": {"Age": f"{20 + i}-{29 + i} years old", "Gender": "Woman"},
        "Self Description": {"Two sentence description": f"I am shopper {i}. I like deals."},
        "Shopping Preference": {
            "Online shopping frequency": "Weekly",
            "To what extent do you agree with the following statements": {
                "I compare prices before buying": ["Strongly agree", "Disagree"][i % 2],
            },
        },
        "Personality": {"Big Five Scores": {"Openness": "High", "Neuroticism": "Low"}},
    }


def make_data(n_users: int = 3, n_sessions: int = 4, n_steps: int = 5, items: int = 6) -> ShoppingData:
    """Sessions whose page t has ``items * (t + 1)`` products: later pages are longer."""
    users = {f"u{i}": User(f"u{i}", survey(i)) for i in range(n_users)}
    sessions = []
    for s in range(n_sessions):
        uid = f"u{s % n_users}"
        steps = []
        for t in range(n_steps):
            if t == 0:
                action, ct = Action.input("nav_bar.search_input", "rice cooker"), None
            elif t < n_steps - 1:
                action, ct = Action.click(f"results.p{t}_item_{t % items}.title"), "product_link"
            else:
                action, ct = Action.terminate(), None
            steps.append(
                Step(
                    action_id=f"a-{s}-{t}",
                    timestamp=f"2025-04-14T21:52:{10 + t:02d}.000Z",
                    kind=action.type,
                    observation=Observation(page(f"p{t}", items * (t + 1))),
                    action=action,
                    click_type=ct,
                    rationale=f"reason {s}-{t}" if t % 2 else None,
                    rationale_source="human" if t % 2 else None,
                )
            )
        sessions.append(
            Session(f"{uid}_2025-04-14T21:52:00Z_{s}", uid, "train" if s < n_sessions - 1 else "test", steps)
        )
    return ShoppingData(users, sessions, source="hand-made")
