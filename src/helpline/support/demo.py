"""Demo orders, so the order and refund tools have something real to work on."""

from __future__ import annotations

from datetime import datetime, timedelta

from helpline.store import Store
from helpline.store.orders import Order, OrderItem
from helpline.store.tables import utcnow

_CUSTOMERS = {
    "omar": ("Omar Haddad", "omar@example.com"),
    "lena": ("Lena Fischer", "lena@example.com"),
    "sam": ("Sam Okafor", "sam@example.com"),
}
DEMO_EMAILS = tuple(email for _name, email in _CUSTOMERS.values())
"""The demo customers' email addresses: an order opens only with the one on it."""

# (id, customer, restaurant, status, placed this long ago, delivery took, items, fees and
# discounts on top of the items). Delivery ``None``: not delivered.
_ORDERS: list[
    tuple[str, str, str, str, timedelta, timedelta | None, list[tuple[str, int, int]], int]
] = [
    (
        "DD-10231", "omar", "Napoli Express", "delivered", timedelta(hours=2), timedelta(minutes=45),
        [("Margherita Pizza", 1, 1150), ("Garlic Bread", 1, 450), ("Coca-Cola 330ml", 2, 250)],
        299,
    ),
    (
        "DD-10228", "omar", "Sushi Kai", "delivered", timedelta(days=3), timedelta(minutes=38),
        [("Salmon Nigiri (8 pcs)", 1, 1390), ("Miso Soup", 1, 390), ("Edamame", 1, 450)],
        299,
    ),
    (
        "DD-10190", "omar", "Burger Barn", "delivered", timedelta(days=45), timedelta(minutes=31),
        [("Double Cheeseburger", 1, 1090), ("Large Fries", 1, 390), ("Chocolate Milkshake", 1, 490)],
        199,
    ),
    (
        "DD-10235", "omar", "Green Bowl", "on_the_way", timedelta(minutes=20), None,
        [("Salmon Poke Bowl", 1, 1290), ("Homemade Lemonade", 1, 350)],
        299,
    ),
    (
        # A 10.00 promo code: the customer paid less than the items cost.
        "DD-10233", "lena", "Thai Orchid", "delivered", timedelta(days=1), timedelta(minutes=52),
        [("Pad Thai", 1, 1250), ("Green Curry", 1, 1350), ("Jasmine Rice", 2, 300)],
        299 - 1000,
    ),
    (
        "DD-10220", "lena", "Taco Loco", "delivered", timedelta(days=6), timedelta(minutes=29),
        [("Chicken Tacos (3)", 1, 990), ("Nachos", 1, 690)],
        299,
    ),
    (
        "DD-10229", "sam", "Curry House", "delivered", timedelta(days=2), timedelta(minutes=41),
        [("Chicken Tikka Masala", 1, 1390), ("Pilau Rice", 1, 350), ("Garlic Naan", 2, 290)],
        299,
    ),
    (
        "DD-10210", "sam", "Napoli Express", "cancelled", timedelta(days=10), None,
        [("Pepperoni Pizza", 1, 1250), ("Tiramisu", 1, 590)],
        299,
    ),
]  # fmt: skip


def demo_orders(now: datetime | None = None) -> list[Order]:
    """Eight orders for Omar, Lena and Sam: recent ones, one too old to refund, one on its way."""
    now = now or utcnow()
    orders = []
    for order_id, who, restaurant, status, ago, took, lines, extra in _ORDERS:
        name, email = _CUSTOMERS[who]
        items = tuple(OrderItem(n, q, p) for n, q, p in lines)
        placed = now - ago
        orders.append(
            Order(
                id=order_id,
                customer_name=name,
                customer_email=email,
                placed_at=placed,
                delivered_at=placed + took if took else None,
                status=status,
                currency="EUR",
                total_cents=sum(i.total_cents for i in items) + extra,
                restaurant=restaurant,
                items=items,
            )
        )
    return orders


def seed_demo_orders(store: Store, now: datetime | None = None) -> list[str]:
    """Add the demo orders that are not in ``store`` yet; returns the ids it added.

    Running it again adds nothing: existing orders (and their refunds) are left alone.
    """
    return [order.id for order in demo_orders(now) if store.orders.add(order)]
