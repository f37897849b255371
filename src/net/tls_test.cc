#include "net/tls.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace epp::net {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

X509Ptr ParseCert(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
}

KeyPtr ParseKey(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  return KeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
}

TEST(TlsTest, GenerateSelfSignedParsesBackAndMatches) {
  auto pair = GenerateSelfSigned();
  ASSERT_TRUE(pair.ok()) << pair.status();
  EXPECT_THAT(pair->private_key_pem, StartsWith("-----BEGIN PRIVATE KEY-----"));
  EXPECT_THAT(pair->cert_chain_pem, StartsWith("-----BEGIN CERTIFICATE-----"));

  X509Ptr cert = ParseCert(pair->cert_chain_pem);
  ASSERT_NE(cert, nullptr);
  KeyPtr key = ParseKey(pair->private_key_pem);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
  EXPECT_EQ(EVP_PKEY_get_base_id(key.get()), EVP_PKEY_RSA);
  EXPECT_EQ(EVP_PKEY_get_bits(key.get()), 2048);

  // Self-signed: the certificate verifies with its own key, and names the organization.
  KeyPtr pub(X509_get_pubkey(cert.get()), EVP_PKEY_free);
  ASSERT_NE(pub, nullptr);
  EXPECT_EQ(X509_verify(cert.get(), pub.get()), 1);
  char org[128] = {0};
  ASSERT_GT(X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_organizationName, org,
                                      sizeof(org)),
            0);
  EXPECT_STREQ(org, "Inference Ext");
  EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(cert.get())), 0);
  EXPECT_GT(X509_cmp_current_time(X509_get0_notAfter(cert.get())), 0);
}

TEST(TlsTest, GeneratedKeysDiffer) {
  auto a = GenerateSelfSigned();
  auto b = GenerateSelfSigned();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->private_key_pem, b->private_key_pem);
  X509Ptr cert_a = ParseCert(a->cert_chain_pem);
  KeyPtr key_b = ParseKey(b->private_key_pem);
  ASSERT_NE(cert_a, nullptr);
  ASSERT_NE(key_b, nullptr);
  EXPECT_NE(X509_check_private_key(cert_a.get(), key_b.get()), 1);
}

class LoadKeyCertPairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/epp-tls-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream out(dir_ + "/" + name, std::ios::binary);
    out << text;
  }
  std::string dir_;
};

TEST_F(LoadKeyCertPairTest, ReadsFiles) {
  auto generated = GenerateSelfSigned();
  ASSERT_TRUE(generated.ok()) << generated.status();
  Write("tls.key", generated->private_key_pem);
  Write("tls.crt", generated->cert_chain_pem);
  auto loaded = LoadKeyCertPair(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->private_key_pem, generated->private_key_pem);
  EXPECT_EQ(loaded->cert_chain_pem, generated->cert_chain_pem);
}

TEST_F(LoadKeyCertPairTest, MissingDirNamesKeyFile) {
  auto loaded = LoadKeyCertPair(dir_ + "/does-not-exist");
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.status().message(), HasSubstr("tls.key"));
}

TEST_F(LoadKeyCertPairTest, MissingCertNamesCertFile) {
  Write("tls.key", "key");
  auto loaded = LoadKeyCertPair(dir_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.status().message(), HasSubstr("tls.crt"));
}

TEST_F(LoadKeyCertPairTest, EmptyFileNamed) {
  Write("tls.key", "");
  Write("tls.crt", "cert");
  auto loaded = LoadKeyCertPair(dir_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.status().message(), HasSubstr("tls.key"));
  EXPECT_THAT(loaded.status().message(), HasSubstr("empty"));
}

}  // namespace
}  // namespace epp::net
