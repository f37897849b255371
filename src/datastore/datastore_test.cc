#include "datastore/datastore.h"

#include "gtest/gtest.h"

namespace epp::datastore {
namespace {

TEST(DatastoreTest, StartsEmptyAndNotReady) {
  Datastore ds;
  auto snap = ds.GetSnapshot();
  ASSERT_NE(snap, nullptr);
  EXPECT_TRUE(snap->endpoints.empty());
  EXPECT_FALSE(snap->pool_ready);
}

TEST(DatastoreTest, UpsertRemoveAndVersions) {
  Datastore ds;
  ds.Upsert(MakeEndpoint("a", "ns", "10.0.0.1", 8000));
  ds.Upsert(MakeEndpoint("b", "ns", "::1", 8001));
  auto snap = ds.GetSnapshot();
  ASSERT_EQ(snap->endpoints.size(), 2u);
  EXPECT_EQ(snap->endpoints[0]->host_port, "10.0.0.1:8000");
  EXPECT_EQ(snap->endpoints[1]->host_port, "[::1]:8001");
  uint64_t v = snap->version;

  // An identical upsert publishes nothing new.
  ds.Upsert(MakeEndpoint("a", "ns", "10.0.0.1", 8000));
  EXPECT_EQ(ds.GetSnapshot()->version, v);

  ds.Remove("ns/a");
  auto after = ds.GetSnapshot();
  ASSERT_EQ(after->endpoints.size(), 1u);
  EXPECT_EQ(after->endpoints[0]->name, "b");
  // The old snapshot a reader still holds is untouched.
  EXPECT_EQ(snap->endpoints.size(), 2u);
}

TEST(DatastoreTest, ReplaceAllKeepsUnchangedPointers) {
  Datastore ds;
  ds.ReplaceAll({MakeEndpoint("a", "ns", "10.0.0.1", 1), MakeEndpoint("b", "ns", "10.0.0.2", 2)});
  auto first = ds.GetSnapshot();
  ds.ReplaceAll({MakeEndpoint("a", "ns", "10.0.0.1", 1), MakeEndpoint("c", "ns", "10.0.0.3", 3)});
  auto second = ds.GetSnapshot();
  ASSERT_EQ(second->endpoints.size(), 2u);
  EXPECT_EQ(second->endpoints[0].get(), first->endpoints[0].get());
  EXPECT_EQ(second->endpoints[1]->name, "c");
}

TEST(DatastoreTest, PoolGoneEmpties) {
  Datastore ds;
  ds.SetPoolReady(true);
  ds.Upsert(MakeEndpoint("a", "ns", "10.0.0.1", 1));
  EXPECT_TRUE(ds.GetSnapshot()->pool_ready);
  ds.SetPoolReady(false);
  EXPECT_FALSE(ds.GetSnapshot()->pool_ready);
  EXPECT_TRUE(ds.GetSnapshot()->endpoints.empty());
}

}  // namespace
}  // namespace epp::datastore

namespace epp::datastore {
namespace {

TEST(DatastoreMetricsTest, CellSurvivesAChangedEndpointOfTheSameKey) {
  Datastore ds;
  ds.ReplaceAll({MakeEndpoint("a", "ns", "10.0.0.1", 1)});
  auto cell = ds.GetSnapshot()->endpoints[0]->metrics;
  ASSERT_NE(cell, nullptr);
  Metrics m;
  m.waiting_queue_size = 7;
  cell->Store(std::make_shared<const Metrics>(m));

  // A label change is a new Endpoint value, but the scraped metrics stay with it.
  ds.ReplaceAll({MakeEndpoint("a", "ns", "10.0.0.1", 1, {{"k", "v"}})});
  EXPECT_EQ(ds.GetSnapshot()->endpoints[0]->metrics, cell);
  ds.Upsert(MakeEndpoint("a", "ns", "10.0.0.1", 2));
  EXPECT_EQ(ds.GetSnapshot()->endpoints[0]->metrics, cell);
  EXPECT_EQ(ds.GetSnapshot()->endpoints[0]->metrics->Load()->waiting_queue_size, 7);

  // A new endpoint gets a fresh, empty cell.
  ds.Upsert(MakeEndpoint("b", "ns", "10.0.0.2", 1));
  auto b = ds.GetSnapshot()->endpoints[1];
  ASSERT_NE(b->metrics, nullptr);
  EXPECT_NE(b->metrics, cell);
  EXPECT_EQ(b->metrics->Load()->waiting_queue_size, 0);
}

}  // namespace
}  // namespace epp::datastore
