"""OPeRA's element naming rule (world.naming)."""

from __future__ import annotations

import pytest

from customer_r1.world.naming import element_name, option_name, slug


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Go to Cart", "go_to_cart"),
        ("$3.99 $3.99 Cashmere Vanilla Tassel Ceramic", "3_99_3_99_cashmere_vanilla_tassel_ceramic"),
        ("  Visit the Acme Store!  ", "visit_the_acme_store"),
        ("already_snake_CASE", "already_snake_case"),
        ("Tiger JBV-S18U 10-Cup (White)", "tiger_jbv_s18u_10_cup_white"),
        ("Café — crème", "caf_cr_me"),
        ("__x__", "x"),
        ("!!!", ""),
    ],
)
def test_slug_lowercases_and_collapses_runs(text: str, expected: str) -> None:
    assert slug(text) == expected


def test_parent_plus_fixed_part() -> None:
    assert element_name("nav_bar", part="search_input") == "nav_bar.search_input"
    assert element_name("buybox.one_time_purchase.purchase_form", part="add_to_cart") == (
        "buybox.one_time_purchase.purchase_form.add_to_cart")


def test_parent_plus_text_and_top_level_text() -> None:
    assert element_name("cart_side_bar", text="Go to Cart") == "cart_side_bar.go_to_cart"
    assert element_name(None, text="Go to Cart") == "go_to_cart"
    assert element_name("", text="See all reviews") == "see_all_reviews"
    assert element_name("product_options.color.button_list",
                        text="$3.99 $3.99 Cashmere Vanilla Tassel Ceramic") == (
        "product_options.color.button_list.3_99_3_99_cashmere_vanilla_tassel_ceramic")


def test_child_index_and_text_fallback_to_index() -> None:
    assert element_name("pagination", index=2) == "pagination.2"
    assert element_name("carousel", text="★★★", index=4) == "carousel.4"
    with pytest.raises(ValueError, match="slugs to nothing"):
        element_name("carousel", text="★★★")


def test_select_options() -> None:
    assert option_name("sort_by", "price") == "sort_by.price"
    assert option_name("quantity", "2") == "quantity.2"
    with pytest.raises(ValueError):
        option_name("quantity", "")


def test_exactly_one_way_to_name() -> None:
    with pytest.raises(ValueError):
        element_name("x")
    with pytest.raises(ValueError):
        element_name("x", part="a", text="b")
