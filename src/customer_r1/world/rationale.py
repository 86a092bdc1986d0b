"""First-person rationales written from the motive and page facts.

Each motive kind has its own wordings (never shared with another kind), so the
rationale of a step reveals its motive, and each names the trait and the facts behind
the choice; the wording is drawn at random so a model cannot key on one sentence.
"""

from __future__ import annotations

import numpy as np

from customer_r1.actions import Action
from customer_r1.world.persona import Traits
from customer_r1.world.policy import Motive, PolicyContext, seen_rating

TEMPLATES: dict[str, tuple[str, ...]] = {
    "search": (
        "I mostly shop for {label}, so I'll search for \"{term}\".",
        "Time to look at {label} again; typing \"{term}\" into the search box.",
        "{label_cap} are what I usually buy online, so let me search \"{term}\".",
    ),
    "deal": (
        "The {target} in today's deals caught my eye at {target_price}.",
        "A deal on the {target} ({target_price}) is worth a look.",
        "Today's deals show the {target} for {target_price}; let me open it.",
    ),
    "submit": (
        "That's what I want; running the search for \"{typed}\".",
        "Search for \"{typed}\" now.",
        "I'll hit search for \"{typed}\".",
    ),
    "suggestion": (
        "The suggestion \"{term}\" is closer to what I have in mind.",
        "\"{term}\" from the dropdown sounds better; I'll take it.",
        "I'll use the suggested search \"{term}\" instead.",
    ),
    "brand": (
        "I stick with brands I trust, and {arg} is my favourite, so I'll filter to {arg}.",
        "{arg} is the brand I always go back to; showing only {arg} results.",
        "Being loyal to {arg}, I'd rather see just their products here.",
    ),
    "sort_price": (
        "Price matters most to me, so I'll sort these results from lowest price.",
        "I always hunt for the lowest price; sorting by price first.",
        "Before anything else I want the cheapest options on top, so sort by price.",
    ),
    "sort_rating": (
        "I trust what other buyers say, so I'll sort these results by customer rating.",
        "Reviews matter a lot to me; showing the best-rated products first.",
        "Before choosing I want the top-rated options on top: sort by rating.",
    ),
    "top_rated": (
        "Sorted by rating, the {target} comes out best ({target_rating}); opening it.",
        "I care about reviews, so I'll open the top-rated {target} at {target_rating} stars.",
        "The {target} is rated {target_rating}, the highest here; checking it first.",
    ),
    "first": (
        "The {target} at the top looks fine; I'll open it.",
        "No need to dig, the first result, {target}, will do for a look.",
        "I'll just start with the first one, the {target}.",
    ),
    "cheapest": (
        "Now sorted by price, the {target} at {target_price} is the cheapest; opening it.",
        "The cheapest option is the {target} for {target_price}; let me check it.",
        "Lowest price first: the {target} at {target_price}.",
    ),
    "brand_first": (
        "Here are the {arg_brand} products; I'll open the {target}.",
        "Among the brand results the {target} comes first; taking a look.",
        "The {target} is the first of these; opening it.",
    ),
    "next_page_first": (
        "On this new page the {target} comes first; let me see it.",
        "Fresh page of results; starting with the {target}.",
        "I'll look at the {target}, first on this page.",
    ),
    "browse": (
        "The {target} looks interesting; let me take a look.",
        "Something about the {target} ({target_price}) makes me curious.",
        "I'll peek at the {target} too.",
    ),
    "next_unseen": (
        "{rejected} wasn't right, so I'll check the {target} next.",
        "Moving on from {rejected}; the {target} is the next one I haven't seen.",
        "Let me try another: the {target}.",
    ),
    "next_page": (
        "I've seen everything on this page; on to the next page.",
        "I'm patient enough to look further; next page of results.",
        "Nothing here fits, so I'll go to the next page.",
    ),
    "related": (
        "Let me try the related search \"{term}\".",
        "The related term \"{term}\" might show better options.",
        "Switching to \"{term}\" from the related searches.",
    ),
    "refine": (
        "These results aren't it; I'll rephrase my search as \"{term}\".",
        "Let me search differently: \"{term}\".",
        "I'll type a new search, \"{term}\", to see other products.",
    ),
    "quit": (
        "I've looked at enough options without finding one; I'm not patient enough to keep "
        "going.",
        "Nothing has worked so far and I don't want to browse more; I'm done.",
        "I give up for now, browsing more pages isn't for me.",
    ),
    "nothing_left": (
        "There's nothing left to look at; I'll stop here.",
        "I've run out of results to check, so I'm done.",
        "No more options to see; ending my search.",
    ),
    "reviews": (
        "I always read reviews before buying; let me see what people say about the {cur}.",
        "Before deciding on the {cur} I want to read the customer reviews.",
        "Reviews matter to me, so I'll open the reviews of the {cur}.",
    ),
    "critical": (
        "I'm thorough, so I also want to see the critical reviews of the {cur}.",
        "The good reviews aren't enough; let me check the critical ones too.",
        "Careful as always, I'll read the negative reviews before deciding.",
    ),
    "back_to_product": (
        "I've read enough reviews of the {cur}; back to the product.",
        "That's enough reading; going back to the {cur} page.",
        "The reviews told me what I needed; back to the product page.",
    ),
    "lost_interest": (
        "After reading these reviews I've lost interest in the {cur}.",
        "Reading this, I'm not sure I want it anymore; I'll stop.",
        "These reviews put me off; I'm done shopping for now.",
    ),
    "option_cheap": (
        "I care about picking the right {dim}, and {arg} is also the cheapest at {opt_price}.",
        "Choosing the {dim} matters to me; {arg} fits and costs least.",
        "I'll take {arg}: the {dim} I want, at the lowest price of the options.",
    ),
    "option": (
        "I'm particular about the {dim}, so I'll switch to {arg}.",
        "The exact {dim} matters to me; {arg} is the one I want.",
        "Choosing the {dim} carefully: {arg}.",
    ),
    "quantity": (
        "I like to stock up, so I'll take 2 of the {cur}.",
        "Buying in bulk saves me trips; quantity 2.",
        "I'll get two of these so I have a spare.",
    ),
    "subscribe": (
        "I go through {cur_noun} regularly and like to stock up, so I'll subscribe and save.",
        "Subscribing to the {cur} means I never run out; Subscribe & Save it is.",
        "I buy this often enough that a subscription makes sense.",
    ),
    "store": (
        "{arg} is the brand I trust most; let me visit the {arg} store to see what else "
        "they have.",
        "I'm loyal to {arg}, so I'll browse their store before deciding.",
        "Let me look at everything {arg} makes; opening their store.",
    ),
    "store_pick": (
        "In the {brand} store the {target} looks like what I need.",
        "From {brand}'s own range I'll open the {target}.",
        "The {target} from the store is worth a look.",
    ),
    "store_leave": (
        "Nothing in this store stands out; going back.",
        "The store doesn't have anything better; leaving it.",
        "I'll head back, this store didn't help.",
    ),
    "bad_reviews": (
        "The reviews of the {cur} are too weak ({cur_rating} stars); back to look for another.",
        "A rating of {cur_rating} isn't good enough for me; I'll look elsewhere.",
        "After those reviews I don't trust the {cur}; moving on.",
    ),
    "over_budget": (
        "At {cur_total} the {cur} is over my {cap} limit; I'll look for something else.",
        "{cur_total} is more than I spend on one item (about {cap}); skipping it.",
        "That's above my budget of {cap}; the {cur} is out.",
    ),
    "unavailable": (
        "The {cur} is out of stock; I'll look for something else.",
        "Currently unavailable, so the {cur} is no use to me; going back.",
        "I can't buy the {cur} if it's not in stock; back to the other options.",
    ),
    "shipping_fee": (
        "A shipping charge on top of {cart_total}? I'd rather not pay that; I'm leaving.",
        "I watch every dollar and this shipping fee isn't worth it; stopping here.",
        "Paying for shipping puts me off this order; I'll leave it.",
    ),
    "compare": (
        "I'm happy to browse a bit more; before settling on the {cur} let me compare another.",
        "I like to shop around, so I'll go back and look at one more option.",
        "No rush: I want to see at least one alternative to the {cur}.",
    ),
    "buy_now": (
        "I don't overthink purchases; buying the {cur} right now.",
        "The {cur} at {cur_total} is good enough; Buy Now.",
        "Why wait? I'll buy the {cur} immediately.",
    ),
    "add_to_cart": (
        "The {cur} at {cur_total} works for me; adding it to my cart.",
        "I'll put the {cur} in my cart and check out from there.",
        "Adding the {cur} to the cart.",
    ),
    "side_checkout": (
        "No need to review the cart; straight to checkout.",
        "I'm impatient to finish, so proceed to checkout from here.",
        "Done deciding; checking out right away.",
    ),
    "review_cart": (
        "Let me look over my cart before paying.",
        "I'll open the cart to double-check everything.",
        "Going to the cart to review the order.",
    ),
    "leave_in_cart": (
        "I'll leave it in my cart and decide another day.",
        "That's in my cart now; I'll come back to it later.",
        "Good enough for today; it stays in the cart for now.",
    ),
    "drop": (
        "The cart total of {cart_total} is more than I want to spend; removing the {priciest}.",
        "Price matters to me and {cart_total} is over my {cap} budget; deleting the {priciest}.",
        "Too expensive at {cart_total}; the {priciest} has to go.",
    ),
    "not_ready": (
        "I'm not ready to pay yet; saving the {first_item} for later.",
        "I don't buy on a whim; I'll save the {first_item} for later and think it over.",
        "Let me sleep on it; save for later.",
    ),
    "checkout": (
        "Everything looks right at {cart_total}; proceeding to checkout.",
        "The cart is fine at {cart_total}; checkout.",
        "Happy with the order ({cart_total}); let's check out.",
    ),
    "cart_emptied": (
        "My cart is empty now; I'm done for today.",
        "Nothing left in the cart, so I'll stop shopping.",
        "With the cart cleared, I'm finished.",
    ),
    "continue": (
        "Let me keep shopping for something else.",
        "I'll continue shopping instead.",
        "Back to browsing for a better option.",
    ),
    "fatigue": (
        "I've been browsing for a while and I'm out of patience; stopping here.",
        "This is taking too long for me; I'm done.",
        "I don't have the patience to keep looking; ending the session.",
    ),
}
_OPENERS = ("", "", "", "Okay. ", "Hmm. ", "Right. ")


def _money(x: float) -> str:
    return f"${x:,.2f}"


def write_rationale(motive: Motive, action: Action, ctx: PolicyContext, traits: Traits,
                    rng: np.random.Generator) -> str:
    """A first-person rationale for ``action`` taken for ``motive`` on this page."""
    shop, state, page = ctx.shop, ctx.state, ctx.page
    cat, prods = shop.catalog, shop.catalog.products
    facts: dict[str, str] = {"arg": motive.arg, "cap": _money(traits.cap),
                             "typed": state.typed, "brand": state.store_brand}
    if motive.kind == "search":
        lab = cat.category(motive.arg).label
        facts.update(label=lab, label_cap=lab[:1].upper() + lab[1:])
    if action.type == "input":
        facts["term"] = action.text or ""
    elif action.type == "click":
        e = page.elements[action.name].effect  # type: ignore[index]
        if e.kind == "search_term":
            facts["term"] = e.arg
        if e.kind == "product":
            t = prods[e.arg]
            facts.update(target=t.title, target_price=_money(t.price),
                         target_rating=str(t.rating))
    if state.product:
        p = prods[state.product]
        facts.update(cur=p.title, cur_rating=str(seen_rating(shop, p)), cur_noun=p.category,
                     cur_total=_money(p.price_for(state.option) * state.qty), dim=p.option_dim)
        if motive.arg and motive.arg in p.option_values:
            facts["opt_price"] = _money(p.price_for(motive.arg))
    if state.brand:
        facts["arg_brand"] = state.brand
    if state.cart:
        facts["cart_total"] = _money(shop.cart_total(state.cart))
        facts["first_item"] = prods[state.cart[0].pid].title
        pr = max(state.cart, key=lambda c: prods[c.pid].price_for(c.option) * c.qty)
        facts["priciest"] = prods[pr.pid].title
    ctx_rej = ctx.memory.rejected
    facts["rejected"] = prods[ctx_rej[-1]].title if ctx_rej else "the last one"
    options = TEMPLATES[motive.kind]
    text = options[int(rng.integers(len(options)))].format_map(_Missing(facts))
    opener = _OPENERS[int(rng.integers(len(_OPENERS)))]
    return opener + text


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "it"
