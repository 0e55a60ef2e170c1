// Provides the one GLIBCXX_3.4.32 symbol that libLibTorchSharp.so (built with GCC 13) needs
// on hosts whose libstdc++ comes from GCC 12 (Debian 12). See build/TorchSharpNativeFix.targets.
#include <ios>
namespace std { void ios_base_library_init() { static ios_base::Init init; } }
