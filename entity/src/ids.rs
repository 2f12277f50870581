//! One newtype per id, so a calendar id cannot be passed where an event id is meant, typed down
//! to the columns: an entity's `calendar_id` is a `CalendarId`, not a bare `Uuid`. All ids are
//! UUID v7: time-ordered, so primary-key indexes stay append-mostly.

use sea_orm::entity::prelude::*;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, DeriveValueType,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl From<$name> for Uuid {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        /// Ids are never auto-incremented numbers.
        impl sea_orm::TryFromU64 for $name {
            fn try_from_u64(_: u64) -> Result<Self, DbErr> {
                Err(DbErr::ConvertFromU64(stringify!($name)))
            }
        }
    };
}

id_type!(
    /// An organization (tenant).
    OrgId
);
id_type!(
    /// An API key (its public id, not its secret).
    ApiKeyId
);
id_type!(
    /// A calendar: a bookable resource.
    CalendarId
);
id_type!(
    /// An event type: what can be booked.
    EventTypeId
);
id_type!(
    /// An event: one appointment.
    EventId
);
id_type!(
    /// A member of a calendar: a user and their role on it.
    MemberId
);
id_type!(
    /// A recurring event: a series of instances, each an event.
    SeriesId
);
id_type!(
    /// A webhook endpoint.
    WebhookId
);
id_type!(
    /// A webhook message: one change, as sent to every endpoint that wants it.
    MessageId
);
id_type!(
    /// One message's delivery to one endpoint.
    DeliveryId
);
id_type!(
    /// A slot hold: a time kept for a few minutes while a booking is confirmed.
    HoldId
);
