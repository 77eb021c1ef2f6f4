# find_package(socketserver) entry point: finds the dependencies, then the exported targets:
# socketserver::socketserver (header-only), and socketserver::compiled when the package was built
# with SOCKETSERVER_SEPARATE_COMPILATION (the non-template code compiled once; it links
# socketserver::socketserver and defines SOCKETSERVER_SEPARATE_COMPILATION for its users).
include(CMakeFindDependencyMacro)

list(PREPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")
find_dependency(Threads)
find_dependency(fmt 9)
find_dependency(Asio 1.22)
find_dependency(OpenSSL 3)
find_dependency(ZLIB)
list(POP_FRONT CMAKE_MODULE_PATH)

include("${CMAKE_CURRENT_LIST_DIR}/socketserverTargets.cmake")
