# find_package(socketserver) entry point: finds the dependencies, then the exported target
# socketserver::socketserver.
include(CMakeFindDependencyMacro)

list(PREPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")
find_dependency(Threads)
find_dependency(fmt 9)
find_dependency(Asio 1.22)
list(POP_FRONT CMAKE_MODULE_PATH)

include("${CMAKE_CURRENT_LIST_DIR}/socketserverTargets.cmake")
